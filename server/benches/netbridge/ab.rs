//! `NETBRIDGE_BENCH_ONLY=ab`: two daemon builds, A and B, side by side, each in its own
//! namespace. Every round makes one operation on each, who goes first alternating, so a drift of
//! the machine's load falls on both alike; the figures are paired by round.

use super::*;

/// Pause after each single operation (`NETBRIDGE_BENCH_AB_GAP_MS`, default 100): the kernel
/// work a disconnect or removal leaves behind (the reaper's deletes and their grace periods)
/// ends before the next operation is timed.
fn gap() -> Duration {
    let ms = std::env::var("NETBRIDGE_BENCH_AB_GAP_MS").ok();
    Duration::from_millis(ms.and_then(|v| v.parse().ok()).unwrap_or(100))
}

/// Bootstrap resamples of the median difference.
const RESAMPLES: usize = 2000;

/// One build: its daemon and a bench over it.
struct Side {
    daemon: Daemon,
    bench: Bench,
}

impl Side {
    /// Starts `binary` in namespace `<prefix>-<tag>`, with the network and sandboxes that the
    /// measured connects use.
    fn start(prefix: &str, dir: &Path, tag: &str, binary: String, started: Instant) -> Side {
        let ns = format!("{prefix}-{tag}");
        let dir = dir.join(tag);
        fs::create_dir_all(&dir).expect("side's temp dir");
        make_namespace(&ns);
        let mut daemon = Daemon::new(&ns, &dir);
        daemon.binary = binary;
        daemon.start();
        let mut bench = Bench::new(Config::from_env(), &ns, &daemon.socket, started);
        bench.measuring_setup();
        Side { daemon, bench }
    }

    /// A few requests, a pause, then the daemon's memory.
    fn idle_memory(&mut self) -> Mem {
        for _ in 0..3 {
            self.bench.client.must("GET", "/_ping", None, 200);
            self.bench.client.must("GET", "/version", None, 200);
        }
        thread::sleep(Duration::from_millis(300));
        self.daemon.memory()
    }
}

/// A's and B's latencies of one operation; the same index is the same round.
#[derive(Default)]
struct Paired {
    a: Samples,
    b: Samples,
}

impl Paired {
    fn push(&mut self, took: [Duration; 2]) {
        self.a.push(took[0]);
        self.b.push(took[1]);
    }

    /// B − A of each round, in ms.
    fn differences(&self) -> Vec<f64> {
        self.a.0.iter().zip(&self.b.0).map(|(a, b)| b - a).collect()
    }
}

/// The paired operations at one number of networks present.
#[derive(Default)]
struct Level {
    networks: usize,
    create: Paired,
    connect: Paired,
    disconnect: Paired,
    remove: Paired,
}

/// Which side goes first in round `r`.
fn order(r: usize) -> [usize; 2] {
    if r % 2 == 0 { [0, 1] } else { [1, 0] }
}

/// `op` on each side in `order`, a pause after each; returns [A's, B's] latency.
fn both(
    sides: &mut [Side; 2],
    order: [usize; 2],
    mut op: impl FnMut(usize, &mut Bench) -> Duration,
) -> [Duration; 2] {
    let mut took = [Duration::ZERO; 2];
    for i in order {
        took[i] = op(i, &mut sides[i].bench);
        thread::sleep(gap());
    }
    took
}

/// Create, connect, disconnect and remove, paired, `rounds` times (after unrecorded warm-ups).
fn rounds(sides: &mut [Side; 2], rounds: usize) -> Level {
    let mut level = Level {
        networks: sides[0].bench.networks,
        ..Level::default()
    };
    for r in 0..WARMUP + rounds {
        let o = order(r);
        let mut ids = [String::new(), String::new()];
        let created = both(sides, o, |i, b| {
            let (id, took) = Bench::create_network(&mut b.client, &format!("ab{r}"));
            ids[i] = id;
            took
        });
        let endpoint = |verb: &'static str| {
            move |_: usize, b: &mut Bench| {
                let sandbox = &b.measure_sandboxes[r % b.measure_sandboxes.len()];
                let body = json!({ "Container": sandbox });
                let path = format!("/networks/{MNET}/{verb}");
                b.client.must("POST", &path, Some(&body), 200).1
            }
        };
        let connected = both(sides, o, endpoint("connect"));
        let disconnected = both(sides, o, endpoint("disconnect"));
        let removed = both(sides, o, |i, b| {
            let path = format!("/networks/{}", ids[i]);
            b.client.must("DELETE", &path, None, 204).1
        });
        if r >= WARMUP {
            level.create.push(created);
            level.connect.push(connected);
            level.disconnect.push(disconnected);
            level.remove.push(removed);
        }
    }
    level
}

/// Restarts (SIGTERM, exec to the first `/_ping`), paired, each side's store as it is.
fn startups(sides: &mut [Side; 2], n: usize) -> Paired {
    let mut paired = Paired::default();
    for r in 0..n {
        let mut took = [Duration::ZERO; 2];
        for i in order(r) {
            let daemon = &mut sides[i].daemon;
            daemon.stop();
            took[i] = daemon.start();
            thread::sleep(gap());
        }
        paired.push(took);
    }
    paired
}

/// Runs the comparison and prints it.
pub(super) fn run(cfg: Config, prefix: &str, dir: &Path, started: Instant) {
    let a = std::env::var("NETBRIDGE_BENCH_DAEMON")
        .unwrap_or_else(|_| env!("CARGO_BIN_EXE_netbridge").to_string());
    let b = std::env::var("NETBRIDGE_BENCH_DAEMON_B")
        .expect("NETBRIDGE_BENCH_ONLY=ab needs NETBRIDGE_BENCH_DAEMON_B");
    let rounds_per_level = std::env::var("NETBRIDGE_BENCH_AB_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(if cfg.quick { 20 } else { 200 });
    let (levels, restarts) = if cfg.quick {
        (vec![0, 20], 4)
    } else {
        (vec![0, 300], 20)
    };
    let mut sides = [
        Side::start(prefix, dir, "a", a.clone(), started),
        Side::start(prefix, dir, "b", b.clone(), started),
    ];
    let progress = |what: &str| eprintln!("[{:7.1}s] {what}", started.elapsed().as_secs_f64());
    progress(&format!(
        "{restarts} paired restarts (load {})",
        load_average()
    ));
    let startup = startups(&mut sides, restarts);
    let fresh = sides.each_mut().map(Side::idle_memory);
    let mut measured = Vec::new();
    let sums_before = sides
        .each_mut()
        .map(|s| operation_sums(&mut s.bench.client));
    for n in levels {
        for side in &mut sides {
            side.bench.grow_networks(n);
        }
        progress(&format!(
            "{rounds_per_level} paired rounds at {n} networks (load {})",
            load_average()
        ));
        measured.push(rounds(&mut sides, rounds_per_level));
    }
    let sums_after = sides
        .each_mut()
        .map(|s| operation_sums(&mut s.bench.client));
    let worked = sides.each_mut().map(Side::idle_memory);
    for side in &mut sides {
        side.daemon.stop();
    }
    println!("\n### A/B, paired\n\nA = {a}\nB = {b}\n");
    print_paired(&startup, &measured);
    print_memory(&fresh, &worked);
    print_steps(&sums_before, &sums_after);
    println!(
        "\n{rounds_per_level} rounds a level, {restarts} restarts, {:.0} s, {}; load average {} \
         after.",
        started.elapsed().as_secs_f64(),
        machine(),
        load_average()
    );
}

fn print_paired(startup: &Paired, levels: &[Level]) {
    println!(
        "| operation | networks | A median / p90 ms | B median / p90 ms | median B−A ms | \
         95% interval | B slower | sign test p |"
    );
    println!("|---|---:|---:|---:|---:|---|---:|---:|");
    print_row("start-up", "–", startup);
    for l in levels {
        let n = l.networks.to_string();
        print_row("create", &n, &l.create);
        print_row("connect", &n, &l.connect);
        print_row("disconnect", &n, &l.disconnect);
        print_row("remove", &n, &l.remove);
    }
}

fn print_row(op: &str, networks: &str, p: &Paired) {
    let d = p.differences();
    let (low, high) = bootstrap_median(&d);
    let slower = d.iter().filter(|x| **x > 0.0).count();
    let faster = d.iter().filter(|x| **x < 0.0).count();
    println!(
        "| {op} | {networks} | {} / {} | {} / {} | {:+.3} | {:+.3} … {:+.3} | {slower} of {} | {:.3} |",
        ms(p.a.median()),
        ms(p.a.quantile(0.9)),
        ms(p.b.median()),
        ms(p.b.quantile(0.9)),
        Samples(d.clone()).median(),
        low,
        high,
        d.len(),
        sign_test(slower, slower + faster),
    );
}

fn print_memory(fresh: &[Mem; 2], worked: &[Mem; 2]) {
    println!("\n| memory MiB | A RSS / anon / file | B RSS / anon / file |");
    println!("|---|---:|---:|");
    for (when, m) in [
        ("idle after restarts", fresh),
        ("idle after the rounds", worked),
    ] {
        let cell = |m: &Mem| {
            format!(
                "{:.1} / {:.1} / {:.1}",
                mib(m.rss),
                mib(m.anon),
                mib(m.file)
            )
        };
        println!("| {when} | {} | {} |", cell(&m[0]), cell(&m[1]));
    }
}

type Sums = std::collections::BTreeMap<String, (f64, f64)>;

/// The daemons' own timings of their steps over the rounds (their `/metrics`), side by side.
fn print_steps(before: &[Sums; 2], after: &[Sums; 2]) {
    println!(
        "\n| daemon's own step (its /metrics), first round to last | A count / mean ms | B count / mean ms |"
    );
    println!("|---|---:|---:|");
    let keys: std::collections::BTreeSet<&String> = after.iter().flat_map(|m| m.keys()).collect();
    for key in keys {
        let cell = |i: usize| {
            let (c1, s1) = after[i].get(key).copied().unwrap_or_default();
            let (c0, s0) = before[i].get(key).copied().unwrap_or_default();
            let c = c1 - c0;
            (c > 0.0).then(|| format!("{c:.0} / {:.3}", (s1 - s0) * 1e3 / c))
        };
        let (a, b) = (cell(0), cell(1));
        if a.is_some() || b.is_some() {
            let none = || "–".to_string();
            let step = key
                .replace("netbridge_operation_duration_seconds", "")
                .replace("netbridge_http_request_duration_seconds", "http");
            println!(
                "| {step} | {} | {} |",
                a.unwrap_or_else(none),
                b.unwrap_or_else(none)
            );
        }
    }
}

/// The 95 % bootstrap interval of the median of `d`.
fn bootstrap_median(d: &[f64]) -> (f64, f64) {
    if d.is_empty() {
        return (f64::NAN, f64::NAN);
    }
    // xorshift64, fixed seed: the same samples give the same interval.
    let mut state = 0x9e37_79b9_7f4a_7c15_u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let medians = Samples(
        (0..RESAMPLES)
            .map(|_| {
                let pick = (0..d.len()).map(|_| d[(next() % d.len() as u64) as usize]);
                Samples(pick.collect()).median()
            })
            .collect(),
    );
    (medians.quantile(0.025), medians.quantile(0.975))
}

/// Two-sided exact sign test: the chance of a split at least this uneven if B and A were alike.
fn sign_test(slower: usize, n: usize) -> f64 {
    if n == 0 {
        return 1.0;
    }
    let k = slower.min(n - slower);
    // ln C(n, i) built up term by term.
    let (mut ln_c, mut tail) = (0.0_f64, 0.0_f64);
    for i in 0..=k {
        if i > 0 {
            ln_c += ((n - i + 1) as f64).ln() - (i as f64).ln();
        }
        tail += (ln_c - n as f64 * std::f64::consts::LN_2).exp();
    }
    (2.0 * tail).min(1.0)
}
