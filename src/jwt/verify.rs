//! TODO core helper
