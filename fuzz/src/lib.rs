//! The fixed keys and tokens the fuzz targets verify against; the code under test is the
//! module's pure core, the `auth_jwt_core` crate, used as a dependency.

pub mod fixture;
