//! Tests for auth_jwt: exact counters over several workers and across a reload.

use super::*;

#[test]
fn counts_are_exact_across_four_workers() {
    let nginx = Nginx::http(&conf(&dead_uri(), "", "")).workers(4).start();
    let zero = scrape(&nginx);
    assert_counters(
        &zero,
        &Expected::default().with_zeroes(),
        "before any traffic",
    );

    let mix = Mix::STANDARD;
    send(&nginx, &mix);
    let lines = served(&nginx, 0);
    let workers: HashSet<u32> = lines.iter().map(|(pid, _)| *pid).collect();
    assert!(
        workers.len() >= 2,
        "every request went to {workers:?}: nothing shows the sum over workers"
    );
    let mut want = Expected::default();
    want.add(&mix, &lines);
    let s = scrape(&nginx);
    assert_counters(&s, &want, "after the traffic");
    assert_eq!(
        s.hits() + s.misses(),
        mix.checked() as u64,
        "one cache lookup per token checked"
    );
    // Scrapes and the status page are not requests auth_jwt checks.
    status(&nginx);
    assert_counters(&scrape(&nginx), &want, "after more scrapes");
    nginx.finish();
}

#[test]
fn counters_survive_reload() {
    let dead = dead_uri();
    let mut nginx = Nginx::http(&conf(&dead, "", "")).workers(4).start();
    let mix = Mix::STANDARD;
    send(&nginx, &mix);
    let mut want = Expected::default();
    want.add(&mix, &served(&nginx, 0));
    let before = scrape(&nginx);
    assert_counters(&before, &want, "before the reload");

    // A changed configuration (same zone): new workers, the zone's counters carry on.
    let old = nginx.worker_pids();
    let extra = "location /extra/ { auth_jwt off; proxy_pass {{upstream}}; }";
    nginx.reload_with(&conf(&dead, "", extra)).expect("reload");
    assert!(nginx.worker_pids().iter().all(|p| !old.contains(p)));
    let after = scrape(&nginx);
    assert_counters(&after, &want, "right after the reload");

    let from = served(&nginx, 0).len();
    let more = Mix {
        ok: 40,
        missing: 5,
        invalid: 7,
        expired: 3,
        forbidden: 9,
        no_keys: 2,
        bypass: 4,
    };
    send(&nginx, &more);
    let lines = served(&nginx, from);
    assert!(
        lines.iter().all(|(pid, _)| !old.contains(pid)),
        "an old worker served after the reload"
    );
    // The new workers' caches start empty: their misses follow from the new lines alone.
    want.add(&more, &lines);
    assert_counters(&scrape(&nginx), &want, "after the reload and more traffic");
    nginx.finish();
}
