//! What the benchmarks share: the clock they measure with, and boringtun's tunnels.
//!
//! The project's machines are shared, and a benchmark pinned to one CPU that another process
//! also wants runs at about half speed by the wall clock. By default the benchmarks therefore
//! measure the benchmark thread's own CPU time ([`ThreadCpu`], from
//! `/proc/thread-self/schedstat`), which is what `openssl speed` reports too; set
//! `FERROWG_BENCH_CLOCK=wall` for criterion's wall clock. Cache and frequency effects of the
//! other load still show in either.

use std::time::Duration;

use criterion::measurement::{Measurement, ValueFormatter, WallTime};
use criterion::{BenchmarkGroup, Criterion, SamplingMode, Throughput};

/// Nanoseconds the calling thread has run on a CPU. Linux brings the figure up to date at every
/// context switch and scheduler tick, so one reading may lag by up to one tick (4 ms at
/// HZ=250). Groups therefore use flat sampling ([`group`]): every sample runs for
/// measurement time / sample size (100 ms or more), and the median over the samples is good to
/// about 1%.
fn thread_cpu_ns() -> u64 {
    // Invariant: the file exists on every Linux since 2.6.9 (with schedstats or sched_info)
    // and starts with the run time in nanoseconds.
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .expect("/proc/thread-self/schedstat")
}

/// Criterion measurement: CPU time of the benchmark thread, in nanoseconds.
pub struct ThreadCpu;

/// Formats nanoseconds like criterion's wall clock does.
static NANOS: WallTime = WallTime;

impl Measurement for ThreadCpu {
    type Intermediate = u64;
    type Value = u64;
    fn start(&self) -> u64 {
        thread_cpu_ns()
    }
    fn end(&self, start: u64) -> u64 {
        thread_cpu_ns().saturating_sub(start)
    }
    fn add(&self, a: &u64, b: &u64) -> u64 {
        a + b
    }
    fn zero(&self) -> u64 {
        0
    }
    fn to_f64(&self, v: &u64) -> f64 {
        *v as f64
    }
    fn formatter(&self) -> &dyn ValueFormatter {
        NANOS.formatter()
    }
}

/// Applies the common settings (modest times: the machine is shared) and the command line.
fn configure<M: Measurement>(
    c: Criterion<M>,
    measurement: Duration,
    samples: usize,
) -> Criterion<M> {
    c.warm_up_time(Duration::from_secs(1))
        .measurement_time(measurement)
        .sample_size(samples)
        .configure_from_args()
}

/// Runs `targets` under the clock chosen by `FERROWG_BENCH_CLOCK` (`cpu`, the default, or
/// `wall`), then prints criterion's summary.
macro_rules! bench_main {
    (measurement = $m:expr, samples = $s:expr, targets = $($t:path),+ $(,)?) => {
        fn main() {
            if std::env::var("FERROWG_BENCH_CLOCK").as_deref() == Ok("wall") {
                let mut c = common::configure_wall($m, $s);
                $( $t(&mut c); )+
                c.final_summary();
            } else {
                let mut c = common::configure_cpu($m, $s);
                $( $t(&mut c); )+
                c.final_summary();
            }
        }
    };
}

/// A criterion that measures wall-clock time.
pub fn configure_wall(measurement: Duration, samples: usize) -> Criterion<WallTime> {
    configure(Criterion::default(), measurement, samples)
}

/// A criterion that measures the thread's CPU time.
pub fn configure_cpu(measurement: Duration, samples: usize) -> Criterion<ThreadCpu> {
    configure(
        Criterion::default().with_measurement(ThreadCpu),
        measurement,
        samples,
    )
}

/// A benchmark group with `throughput` and flat sampling (equal, long samples; see
/// [`thread_cpu_ns`]).
pub fn group<'a, M: Measurement>(
    c: &'a mut Criterion<M>,
    name: &str,
    throughput: Throughput,
) -> BenchmarkGroup<'a, M> {
    let mut g = c.benchmark_group(name);
    g.throughput(throughput).sampling_mode(SamplingMode::Flat);
    g
}

/// Two boringtun 0.7.1 tunnels between the keys `clamp([1; 32])` (A) and `clamp([2; 32])` (B),
/// before any handshake; their rate limiters never trip.
#[allow(dead_code)] // not every benchmark compares with boringtun
pub fn boringtun_tunnels() -> (boringtun::noise::Tunn, boringtun::noise::Tunn) {
    use boringtun::noise::rate_limiter::RateLimiter;
    use boringtun::noise::Tunn;
    use boringtun::x25519::{PublicKey, StaticSecret};
    use ferrowg_proto::crypto::clamp;
    use std::sync::Arc;
    let ska = StaticSecret::from(clamp([1; 32]));
    let skb = StaticSecret::from(clamp([2; 32]));
    let (pka, pkb) = (PublicKey::from(&ska), PublicKey::from(&skb));
    let rla = Arc::new(RateLimiter::new(&pka, u64::MAX));
    let rlb = Arc::new(RateLimiter::new(&pkb, u64::MAX));
    let a = Tunn::new(ska, pkb, None, None, 1, Some(rla));
    let b = Tunn::new(skb, pka, None, None, 2, Some(rlb));
    (a, b)
}
