//! An open-loop HTTP/1.1 load generator for `benches/login_storm.sh`: GET
//! requests at a fixed total rate, spread over keep-alive connections, each
//! request's latency counted from the moment it was *due*, not the moment it
//! was sent, so a stall shows up in the percentiles instead of silently
//! lowering the rate (wrk's closed loop hides it: "coordinated omission").
//!
//! With `--storm`, a second load is switched on and off underneath the paced
//! one on a fixed cycle of three windows: quiet (A), storm, quiet (B). Every
//! paced request is classed by the window it was due in (the latencies of
//! the first `--guard` seconds of each window are left out, so a window is
//! not judged by the previous window's tail; failures always count), and
//! each class gets its own percentiles. Fine interleaving spreads a shared
//! machine's hiccups evenly over the classes; quiet A against quiet B is the
//! noise of the very same run, and B against A also shows a storm tail the
//! guard did not cover.
//!
//! Usage: paced_load [--storm URL --storm-body FILE [--storm-conns N]
//!                    [--window SECS] [--guard SECS]] URL RATE SECONDS CONNECTIONS
//! Prints one line per class: `class=C requests=N errors=E rps=R p50_ms=…
//! p99_ms=… p999_ms=… max_ms=…` (C is `all`, or `quiet_a`, `storm`,
//! `quiet_b` and `quiet` for A and B pooled), and with `--storm` a last line
//! `logins=N login_errors=E logins_per_s=R` (per second of storm window).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

struct Target {
    addr: String,
    request: Vec<u8>,
}

impl Target {
    /// `GET url`, or `POST url` with a JSON `body`.
    fn new(url: &str, body: Option<&[u8]>) -> Result<Target, String> {
        let rest = url
            .strip_prefix("http://")
            .ok_or("only http:// URLs are supported")?;
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        };
        let head = match body {
            None => format!(
                "GET {path} HTTP/1.1\r\nHost: {authority}\r\nUser-Agent: paced_load\r\n\r\n"
            ),
            Some(body) => format!(
                "POST {path} HTTP/1.1\r\nHost: {authority}\r\nUser-Agent: paced_load\r\n\
                 Content-Type: application/json\r\nContent-Length: {}\r\n\r\n",
                body.len()
            ),
        };
        let mut request = head.into_bytes();
        request.extend_from_slice(body.unwrap_or_default());
        Ok(Target {
            addr: authority.to_string(),
            request,
        })
    }

    fn connect(&self) -> std::io::Result<BufReader<TcpStream>> {
        let stream = TcpStream::connect(&self.addr)?;
        stream.set_nodelay(true)?;
        Ok(BufReader::new(stream))
    }
}

/// Sends the target's request and reads one response; true when it is 2xx.
fn exchange(reader: &mut BufReader<TcpStream>, target: &Target) -> std::io::Result<bool> {
    reader.get_mut().write_all(&target.request)?;
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let ok = line.split(' ').nth(1).is_some_and(|s| s.starts_with('2'));
    let mut length = 0usize;
    loop {
        line.clear();
        if reader.read_line(&mut line)? == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        let header = line.trim_end();
        if header.is_empty() {
            break;
        }
        if let Some((name, value)) = header.split_once(':') {
            if name.eq_ignore_ascii_case("content-length") {
                length = value.trim().parse().unwrap_or(0);
            }
        }
    }
    let mut body = vec![0u8; length];
    reader.read_exact(&mut body)?;
    Ok(ok)
}

/// One exchange on `stream`, connecting first when there is none; a
/// connection that failed is dropped so the next call starts afresh.
fn send(stream: &mut Option<BufReader<TcpStream>>, target: &Target) -> std::io::Result<bool> {
    let outcome = match stream {
        Some(reader) => exchange(reader, target),
        None => target
            .connect()
            .and_then(|reader| exchange(stream.insert(reader), target)),
    };
    if outcome.is_err() {
        *stream = None;
    }
    outcome
}

/// The storm's on/off cycle: windows of `window`, quiet A, storm, quiet B.
#[derive(Clone, Copy)]
struct Cycle {
    start: Instant,
    window: Duration,
    guard: Duration,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Class {
    QuietA = 0,
    Storm = 1,
    QuietB = 2,
}

impl Cycle {
    fn index(&self, at: Instant) -> u32 {
        (at.saturating_duration_since(self.start).as_secs_f64() / self.window.as_secs_f64()) as u32
    }

    /// The class of a request due at `at`, and whether it fell in the
    /// window's guard (its latency is left out; a failure still counts).
    fn class(&self, at: Instant) -> (Class, bool) {
        let i = self.index(at);
        let class = match i % 3 {
            0 => Class::QuietA,
            1 => Class::Storm,
            _ => Class::QuietB,
        };
        (
            class,
            at.saturating_duration_since(self.window_start(i)) < self.guard,
        )
    }

    fn window_start(&self, i: u32) -> Instant {
        self.start + self.window * i
    }

    /// Seconds of the windows of `class` before `end`, less their guards
    /// when `guarded`.
    fn seconds(&self, class: Class, end: Instant, guarded: bool) -> f64 {
        let skip = if guarded { self.guard } else { Duration::ZERO };
        (0..=self.index(end))
            .filter(|i| i % 3 == class as u32)
            .map(|i| {
                let to = self.window_start(i + 1).min(end);
                to.saturating_duration_since(self.window_start(i) + skip)
                    .as_secs_f64()
            })
            .sum::<f64>()
            .max(f64::EPSILON)
    }
}

/// Latencies (µs) and errors of one class.
#[derive(Default)]
struct Tally {
    latencies: Vec<u32>,
    errors: u64,
}

/// One paced connection: requests due every `interval` from `first`, each
/// tallied under its class (index 0 only, without a cycle).
fn paced(
    target: &Target,
    first: Instant,
    interval: Duration,
    end: Instant,
    cycle: Option<Cycle>,
) -> [Tally; 3] {
    let mut tallies: [Tally; 3] = Default::default();
    let mut stream: Option<BufReader<TcpStream>> = None;
    let mut due = first;
    while due < end {
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
        let outcome = send(&mut stream, target);
        let (class, guarded) = cycle.map_or((Class::QuietA, false), |c| c.class(due));
        let tally = &mut tallies[class as usize];
        match outcome {
            Ok(true) if !guarded => tally
                .latencies
                .push(due.elapsed().as_micros().min(u32::MAX as u128) as u32),
            Ok(true) => {}
            Ok(false) | Err(_) => tally.errors += 1,
        }
        due += interval;
    }
    tallies
}

/// One storm connection: back-to-back requests through every storm window,
/// a fresh connection per window. Returns (answered 2xx, failed).
fn storm(target: &Target, cycle: Cycle, end: Instant) -> (u64, u64) {
    let (mut ok, mut failed) = (0, 0);
    let mut i = 1;
    while cycle.window_start(i) < end {
        let (from, to) = (cycle.window_start(i), cycle.window_start(i + 1).min(end));
        if let Some(wait) = from.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
        let mut stream = None;
        while Instant::now() < to {
            match send(&mut stream, target) {
                Ok(true) => ok += 1,
                Ok(false) | Err(_) => failed += 1,
            }
        }
        i += 3;
    }
    (ok, failed)
}

fn percentile(sorted: &[u32], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
    f64::from(sorted[i]) / 1000.0
}

/// Prints one class's line; `seconds` is the time its requests were due in.
fn report(class: &str, mut latencies: Vec<u32>, errors: u64, seconds: f64) {
    latencies.sort_unstable();
    println!(
        "class={class} requests={} errors={errors} rps={:.0} p50_ms={:.3} p99_ms={:.3} p999_ms={:.3} max_ms={:.3}",
        latencies.len(),
        latencies.len() as f64 / seconds,
        percentile(&latencies, 0.50),
        percentile(&latencies, 0.99),
        percentile(&latencies, 0.999),
        percentile(&latencies, 1.0),
    );
}

/// The `--storm` options.
struct Storm {
    target: Target,
    conns: u32,
    window: Duration,
    guard: Duration,
}

struct Args {
    target: Target,
    rate: f64,
    seconds: f64,
    conns: u32,
    storm: Option<Storm>,
}

fn parse_args() -> Result<Args, String> {
    let mut args = std::env::args().skip(1);
    let (mut storm_url, mut storm_body, mut storm_conns) = (None, None, 4u32);
    let (mut window, mut guard) = (3.0f64, 0.75f64);
    let mut positional = Vec::new();
    while let Some(arg) = args.next() {
        let mut value = || args.next().ok_or(format!("{arg} needs a value"));
        match arg.as_str() {
            "--storm" => storm_url = Some(value()?),
            "--storm-body" => storm_body = Some(value()?),
            "--storm-conns" => storm_conns = value()?.parse().map_err(|_| "bad --storm-conns")?,
            "--window" => window = value()?.parse().map_err(|_| "bad --window")?,
            "--guard" => guard = value()?.parse().map_err(|_| "bad --guard")?,
            _ => positional.push(arg),
        }
    }
    let [url, rate, seconds, conns] = positional.as_slice() else {
        return Err("expected URL RATE SECONDS CONNECTIONS".into());
    };
    let rate: f64 = rate.parse().map_err(|_| "bad RATE")?;
    let seconds: f64 = seconds.parse().map_err(|_| "bad SECONDS")?;
    let conns: u32 = conns.parse().map_err(|_| "bad CONNECTIONS")?;
    if rate <= 0.0 || seconds <= 0.0 || conns == 0 {
        return Err("RATE, SECONDS and CONNECTIONS must be positive".into());
    }
    let storm = match (storm_url, storm_body) {
        (None, None) => None,
        (Some(url), Some(body)) => {
            let body = std::fs::read(&body).map_err(|e| format!("cannot read {body}: {e}"))?;
            if storm_conns == 0 || !(0.0..window).contains(&guard) {
                return Err(
                    "--storm-conns must be positive and --guard shorter than --window".into(),
                );
            }
            Some(Storm {
                target: Target::new(&url, Some(&body))?,
                conns: storm_conns,
                window: Duration::from_secs_f64(window),
                guard: Duration::from_secs_f64(guard),
            })
        }
        _ => return Err("--storm and --storm-body go together".into()),
    };
    Ok(Args {
        target: Target::new(url, None)?,
        rate,
        seconds,
        conns,
        storm,
    })
}

fn main() {
    let args = parse_args().unwrap_or_else(|e| {
        eprintln!(
            "{e}\nusage: paced_load [--storm URL --storm-body FILE [--storm-conns N] [--window SECS] \
             [--guard SECS]] URL RATE SECONDS CONNECTIONS"
        );
        std::process::exit(2);
    });
    let interval = Duration::from_secs_f64(f64::from(args.conns) / args.rate);
    let start = Instant::now() + Duration::from_millis(50);
    let end = start + Duration::from_secs_f64(args.seconds);
    let cycle = args.storm.as_ref().map(|s| Cycle {
        start,
        window: s.window,
        guard: s.guard,
    });
    let (target, conns) = (&args.target, args.conns);
    let (tallies, storms) = std::thread::scope(|scope| {
        let storms: Vec<_> = args
            .storm
            .iter()
            .zip(cycle)
            .flat_map(|(s, cycle)| {
                (0..s.conns).map(move |_| scope.spawn(move || storm(&s.target, cycle, end)))
            })
            .collect();
        let paced: Vec<_> = (0..conns)
            .map(|i| {
                // Stagger the connections evenly across one interval.
                let first = start + interval.mul_f64(f64::from(i) / f64::from(conns));
                scope.spawn(move || paced(target, first, interval, end, cycle))
            })
            .collect();
        let tallies: Vec<[Tally; 3]> = paced
            .into_iter()
            .map(|h| h.join().unwrap_or_default())
            .collect();
        let storms: Vec<(u64, u64)> = storms
            .into_iter()
            .map(|h| h.join().unwrap_or_default())
            .collect();
        (tallies, storms)
    });
    let merged = |class: Class| {
        let latencies: Vec<u32> = tallies
            .iter()
            .flat_map(|t| t[class as usize].latencies.iter().copied())
            .collect();
        let errors = tallies
            .iter()
            .map(|t| t[class as usize].errors)
            .sum::<u64>();
        (latencies, errors)
    };
    let Some(cycle) = cycle else {
        let (latencies, errors) = merged(Class::QuietA);
        report("all", latencies, errors, args.seconds);
        return;
    };
    let (a, a_errors) = merged(Class::QuietA);
    let (b, b_errors) = merged(Class::QuietB);
    let (s, s_errors) = merged(Class::Storm);
    let quiet: Vec<u32> = a.iter().chain(&b).copied().collect();
    let secs_a = cycle.seconds(Class::QuietA, end, true);
    let secs_b = cycle.seconds(Class::QuietB, end, true);
    report("quiet_a", a, a_errors, secs_a);
    report("storm", s, s_errors, cycle.seconds(Class::Storm, end, true));
    report("quiet_b", b, b_errors, secs_b);
    report("quiet", quiet, a_errors + b_errors, secs_a + secs_b);
    let storm_seconds = cycle.seconds(Class::Storm, end, false);
    let (logins, failed) = storms
        .iter()
        .fold((0, 0), |(o, f), (ok, bad)| (o + ok, f + bad));
    println!(
        "logins={logins} login_errors={failed} logins_per_s={:.2}",
        logins as f64 / storm_seconds
    );
}
