//! An open-loop HTTP/1.1 load generator for `benches/login_storm.sh`: GET
//! requests at a fixed total rate, spread over keep-alive connections, each
//! request's latency counted from the moment it was *due*, not the moment it
//! was sent, so a stall shows up in the percentiles instead of silently
//! lowering the rate (wrk's closed loop hides it: "coordinated omission").
//!
//! Usage: paced_load URL RATE_PER_SECOND SECONDS CONNECTIONS
//! Prints one line: `requests=N errors=E rps=R p50_ms=… p99_ms=… p999_ms=… max_ms=…`

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

struct Target {
    addr: String,
    request: Vec<u8>,
}

fn parse_url(url: &str) -> Result<Target, String> {
    let rest = url
        .strip_prefix("http://")
        .ok_or("only http:// URLs are supported")?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let request =
        format!("GET {path} HTTP/1.1\r\nHost: {authority}\r\nUser-Agent: paced_load\r\n\r\n");
    Ok(Target {
        addr: authority.to_string(),
        request: request.into_bytes(),
    })
}

/// Reads one response; true when its status is 2xx.
fn read_response(reader: &mut BufReader<TcpStream>) -> std::io::Result<bool> {
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

/// One connection's share: requests due every `interval` from `start`.
fn connection(
    target: &Target,
    start: Instant,
    interval: Duration,
    end: Instant,
) -> (Vec<u32>, u64) {
    let mut latencies = Vec::new();
    let mut errors = 0u64;
    let mut stream: Option<BufReader<TcpStream>> = None;
    let mut due = start;
    while due < end {
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
        let reader = match &mut stream {
            Some(reader) => reader,
            None => match TcpStream::connect(&target.addr) {
                Ok(s) => {
                    let _ = s.set_nodelay(true);
                    stream.insert(BufReader::new(s))
                }
                Err(_) => {
                    errors += 1;
                    due += interval;
                    continue;
                }
            },
        };
        let sent = reader.get_mut().write_all(&target.request);
        match sent.and_then(|()| read_response(reader)) {
            Ok(true) => latencies.push(due.elapsed().as_micros().min(u32::MAX as u128) as u32),
            Ok(false) => errors += 1,
            Err(_) => {
                errors += 1;
                stream = None;
            }
        }
        due += interval;
    }
    (latencies, errors)
}

fn percentile(sorted: &[u32], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
    f64::from(sorted[i]) / 1000.0
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let usage = "usage: paced_load URL RATE_PER_SECOND SECONDS CONNECTIONS";
    let [_, url, rate, seconds, conns] = args.as_slice() else {
        eprintln!("{usage}");
        std::process::exit(2);
    };
    let parsed = (
        parse_url(url),
        rate.parse::<f64>(),
        seconds.parse::<f64>(),
        conns.parse::<u32>(),
    );
    let (Ok(target), Ok(rate), Ok(seconds), Ok(conns)) = parsed else {
        eprintln!("{usage}");
        std::process::exit(2);
    };
    if rate <= 0.0 || seconds <= 0.0 || conns == 0 {
        eprintln!("{usage}");
        std::process::exit(2);
    }
    let interval = Duration::from_secs_f64(f64::from(conns) / rate);
    let start = Instant::now() + Duration::from_millis(50);
    let end = start + Duration::from_secs_f64(seconds);
    let target = &target;
    let results: Vec<(Vec<u32>, u64)> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..conns)
            .map(|i| {
                // Stagger the connections evenly across one interval.
                let first = start + interval.mul_f64(f64::from(i) / f64::from(conns));
                scope.spawn(move || connection(target, first, interval, end))
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_default())
            .collect()
    });
    let errors: u64 = results.iter().map(|r| r.1).sum();
    let mut all: Vec<u32> = results.into_iter().flat_map(|r| r.0).collect();
    all.sort_unstable();
    println!(
        "requests={} errors={} rps={:.0} p50_ms={:.3} p99_ms={:.3} p999_ms={:.3} max_ms={:.3}",
        all.len(),
        errors,
        all.len() as f64 / seconds,
        percentile(&all, 0.50),
        percentile(&all, 0.99),
        percentile(&all, 0.999),
        percentile(&all, 1.0),
    );
}
