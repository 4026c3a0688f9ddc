//! A cluster simulation of the limit: nodes with their own tables, one Redis (a map), each
//! node's sync on its own phase, late by a random delay, its reply folded after a round trip;
//! a round-robin client at a multiple of the rate. Deterministic (a seeded xorshift).

use std::collections::HashMap;
use std::sync::atomic::AtomicU64;

use super::{Decision, LimitTable, SyncItem};

const KEY: u64 = 42;
const WINDOW: u64 = 1000;

/// One run's setting.
#[derive(Debug, Clone, Copy)]
pub struct Sim {
    pub nodes: usize,
    /// The `nodes=` hint (1: none).
    pub hint: u32,
    pub limit: u32,
    pub sync_ms: u64,
    /// Each sync starts late by up to this (uniform), so that phases drift apart.
    pub late_ms: u64,
    /// Drain to fold: the reply arrives this much later.
    pub rtt_ms: u64,
    /// Requests per millisecond over the cluster.
    pub per_ms: u64,
    /// Unix milliseconds of the first request (its phase in the window).
    pub start_ms: u64,
    /// Counted after this much warm-up.
    pub warm_ms: u64,
    pub run_ms: u64,
    /// The nodes' first syncs spread over one interval (else all at `start_ms`).
    pub staggered: bool,
    /// Requests go round robin over the first `busy` nodes only (a sticky balancer: 1).
    pub busy: usize,
    pub seed: u64,
}

impl Sim {
    /// Three nodes, 50 r/s, sync 100 ms, 90 times the rate, 10 s after a second of warm-up:
    /// `t/ratelimit.rs`'s cluster.
    pub fn like_the_test() -> Self {
        Self {
            nodes: 3,
            hint: 3,
            limit: 50,
            sync_ms: 100,
            late_ms: 0,
            rtt_ms: 1,
            per_ms: 5,
            start_ms: 1_700_000_000_250,
            warm_ms: 1000,
            run_ms: 10_000,
            staggered: true,
            busy: 3,
            seed: 1,
        }
    }
}

/// What a run admitted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// Allowed after the warm-up.
    pub allowed: u64,
    /// Allowed in each whole window, in order (the warm-up's included).
    pub per_window: Vec<u64>,
}

struct Node {
    words: Vec<AtomicU64>,
    next_sync: u64,
    /// A reply in flight: when it lands, and the items with their totals.
    reply: Option<(u64, Vec<(SyncItem, u64)>)>,
    synced: bool,
}

struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        if n == 0 {
            0
        } else {
            self.0 % n
        }
    }
}

/// Runs `s`: every millisecond, each node due syncs (drain, INCRBY or GET, fold one round
/// trip later), then `per_ms` requests go round robin. A node not synced yet limits alone at
/// its share, as the module does before its first sync.
pub fn run(s: &Sim) -> Outcome {
    let mut rng = Rng(s.seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
    let mut nodes: Vec<Node> = (0..s.nodes)
        .map(|i| Node {
            words: (0..LimitTable::words_for(16))
                .map(|_| AtomicU64::new(0))
                .collect(),
            next_sync: s.start_ms
                + if s.staggered {
                    i as u64 * s.sync_ms / s.nodes as u64
                } else {
                    0
                },
            reply: None,
            synced: false,
        })
        .collect();
    let mut redis: HashMap<u64, u64> = HashMap::new();
    let (first, end) = (s.start_ms / WINDOW, s.start_ms + s.warm_ms + s.run_ms);
    let mut per_window = vec![0u64; ((end - 1) / WINDOW - first + 1) as usize];
    let mut allowed = 0;
    let mut items = Vec::new();
    let mut n = 0usize;
    let alone = s.limit.div_ceil(s.hint.max(1));
    for now in s.start_ms..end {
        for node in &mut nodes {
            let t = LimitTable::new(&node.words);
            if node.reply.as_ref().is_some_and(|(at, _)| *at <= now) {
                let (_, replies) = node.reply.take().unwrap_or_default();
                for (it, total) in &replies {
                    t.fold(it, *total, now, WINDOW, s.hint);
                }
                node.synced = true;
            }
            if node.reply.is_none() && now >= node.next_sync {
                items.clear();
                t.drain(now, WINDOW, &mut items);
                let replies = items
                    .iter()
                    .map(|it| {
                        let total = redis.entry(it.window).or_default();
                        *total += it.delta;
                        (*it, *total)
                    })
                    .collect();
                node.reply = Some((now + s.rtt_ms, replies));
                node.next_sync = now + s.sync_ms + rng.below(s.late_ms + 1);
            }
        }
        for _ in 0..s.per_ms {
            let node = &nodes[n % s.busy.clamp(1, s.nodes)];
            n += 1;
            let t = LimitTable::new(&node.words);
            let (limit, share) = if node.synced {
                (s.limit, s.hint)
            } else {
                (alone, 1)
            };
            if let Decision::Allow { .. } = t.hit(KEY, now, WINDOW, limit, share) {
                per_window[(now / WINDOW - first) as usize] += 1;
                if now >= s.start_ms + s.warm_ms {
                    allowed += 1;
                }
            }
        }
    }
    Outcome {
        allowed,
        per_window,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The share of the configured rate a run admitted, in per cent over (+) or under (-).
    fn off(s: &Sim, o: &Outcome) -> f64 {
        let expected = f64::from(s.limit) * s.run_ms as f64 / WINDOW as f64;
        (o.allowed as f64 / expected - 1.0) * 100.0
    }

    /// The round-robin cluster of `t/ratelimit.rs` with syncs late by up to twice their
    /// interval (the phases drift apart): within 10 % of the rate either way. Before the
    /// unseen hits were estimated, this measured +7.6 % on time and +12 % to +16 % late.
    #[test]
    fn late_syncs_within_ten_percent() {
        for late in [0, 50, 100, 200] {
            for seed in 1..6 {
                let s = Sim {
                    late_ms: late,
                    seed,
                    ..Sim::like_the_test()
                };
                let o = run(&s);
                let off = off(&s, &o);
                assert!(
                    off.abs() <= 10.0,
                    "late {late} seed {seed}: {off:+.1} % {o:?}"
                );
            }
        }
    }

    /// Other shapes of the same cluster: within 10 % either way.
    #[test]
    fn shapes_within_ten_percent() {
        let base = Sim {
            late_ms: 100,
            ..Sim::like_the_test()
        };
        for (name, s) in [
            ("two of three nodes busy", Sim { busy: 2, ..base }),
            (
                "1.5 times the rate",
                Sim {
                    per_ms: 1,
                    limit: 500,
                    ..base
                },
            ),
            (
                "twice the rate",
                Sim {
                    per_ms: 1,
                    limit: 250,
                    ..base
                },
            ),
            (
                "2 nodes",
                Sim {
                    nodes: 2,
                    hint: 2,
                    busy: 2,
                    ..base
                },
            ),
            (
                "5 nodes",
                Sim {
                    nodes: 5,
                    hint: 5,
                    busy: 5,
                    ..base
                },
            ),
            (
                "nodes=3 for 2",
                Sim {
                    nodes: 2,
                    busy: 2,
                    ..base
                },
            ),
            ("20 ms round trips", Sim { rtt_ms: 20, ..base }),
            (
                "1000 r/s",
                Sim {
                    limit: 1000,
                    per_ms: 20,
                    ..base
                },
            ),
            (
                "sync 200 ms late by 200",
                Sim {
                    sync_ms: 200,
                    late_ms: 200,
                    limit: 100,
                    ..base
                },
            ),
            (
                "in step",
                Sim {
                    staggered: false,
                    ..base
                },
            ),
        ] {
            let o = run(&s);
            let off = off(&s, &o);
            assert!(off.abs() <= 10.0, "{name}: {off:+.1} % {o:?}");
        }
    }

    /// What stays outside 10 %, as README says: a sticky balancer (one busy node spends a
    /// third of the room per sync), and no `nodes=` hint (each node spends all it sees).
    #[test]
    fn outside_ten_percent() {
        let base = Sim {
            late_ms: 100,
            ..Sim::like_the_test()
        };
        let sticky = run(&Sim { busy: 1, ..base });
        let off_sticky = off(&base, &sticky);
        assert!((-25.0..=0.0).contains(&off_sticky), "{off_sticky:+.1} %");
        let s = Sim { hint: 1, ..base };
        let no_hint = off(&s, &run(&s));
        assert!((0.0..=30.0).contains(&no_hint), "{no_hint:+.1} %");
    }
}
