//! The traffic: every request the mesh's sidecars log over the span, plus their noise.
//!
//! Requests are plain data ([`Event`]); how a line looks is `render`'s job and
//! what it proves is `truth`'s, so one generated run can be rendered in any
//! format and judged the way that format allows.

use crate::clock::{DAY_MS, MINUTE_MS, SECOND_MS};
use crate::mesh::{
    CATALOG, CRON_TO_PURCHASE_HISTORY, Caller, CallerSpec, FLOWS, LEGACY_SLEEP_TO_WEB_API, Mesh,
    SLEEP_TO_CATALOG, VM_TO_HTTPBIN, WEB_API_TO_RECOMMENDATION, WORKLOADS,
};
use crate::rng::Rng;

/// The window the mesh is designed around (and the truth's default).
pub const DESIGN_WINDOW_MS: i64 = DAY_MS;

/// No request starts this close to the design window's start, so a reader
/// that takes the window's end from kubelet's receive time (a few ms after
/// `%START_TIME%` + duration) still puts every request on the same side.
pub const GUARD_MS: i64 = 15 * SECOND_MS;

/// Requests to catalog over the whole span: one before the window, seven in it.
const CATALOG_REQUESTS: usize = 8;

/// Share of access lines that are outbound, for formats that log both directions.
const OUTBOUND_PERCENT: usize = 12;

/// pilot-agent lines at each proxy's start (see `render::STARTUP_NOISE`).
pub const STARTUP_NOISE_LINES: usize = 5;

/// What to generate.
#[derive(Clone, Debug)]
pub struct TrafficConfig {
    /// Complete access lines (inbound + outbound).
    pub lines: usize,
    pub end_ms: i64,
    pub span_ms: i64,
    pub seed: u64,
    pub noise_ratio: f64,
    pub malformed: usize,
    /// The format logs outbound requests too (Istio's mesh-wide access log).
    pub outbound: bool,
}

/// Which side of a request a line is, or a line cut short.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    /// The destination's sidecar: the evidence.
    Inbound,
    /// The caller's sidecar (`outbound|…` cluster); same request id as its inbound twin.
    Outbound,
    /// An inbound line cut short; never a request.
    Malformed,
}

/// How the request ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    Ok,
    NotFound,
    /// 503 `UF`: the app refused the connection.
    UpstreamFailure,
    /// Code 0 `DC`: the client hung up first.
    DownstreamDisconnect,
}

/// One access-log entry to write.
#[derive(Clone, Debug)]
pub struct Event {
    pub start_ms: i64,
    /// Seeds everything about the line not stored here (ids, sizes, ports).
    pub seed: u64,
    pub duration_ms: u32,
    pub dest_pod: u16,
    pub caller: Caller,
    pub flow: u8,
    pub template: u8,
    pub outcome: Outcome,
    pub side: Side,
    /// A plaintext request carrying an `X-Forwarded-Client-Cert` with a `URI=`.
    pub forged_xfcc: bool,
    /// Malformed only: where the line is cut, in thousandths of its length.
    pub cut_permille: u16,
}

impl Event {
    /// The pod whose istio-proxy wrote this line.
    pub fn log_pod(&self) -> u16 {
        match (self.side, self.caller) {
            (Side::Outbound, Caller::Pod(pod)) => pod,
            _ => self.dest_pod,
        }
    }

    /// When kubelet received the line (ns): Envoy writes an entry once the request completes.
    pub fn emitted_ns(&self) -> i64 {
        let delay = Rng::derive(self.seed, 7).range(40_000, 2_500_000);
        (self.start_ms + i64::from(self.duration_ms)) * 1_000_000 + delay
    }
}

/// A line istio-proxy writes that is not an access entry.
#[derive(Clone, Debug)]
pub struct Noise {
    pub at_us: i64,
    pub pod: u16,
    /// `Some(i)`: the i-th line of the proxy's start; `None`: a runtime message.
    pub startup: Option<u8>,
    pub seed: u64,
}

impl Noise {
    pub fn emitted_ns(&self) -> i64 {
        self.at_us * 1000 + Rng::derive(self.seed, 7).range(20_000, 900_000)
    }
}

/// A line of the output, in write order.
#[derive(Clone, Copy, Debug)]
pub enum Item {
    Event(u32),
    Noise(u32),
}

/// Everything generated for one run.
#[derive(Debug)]
pub struct Traffic {
    pub events: Vec<Event>,
    pub noise: Vec<Noise>,
    /// When the legacy cron job ran, if the span reaches back far enough.
    pub cron_at: Option<i64>,
}

impl Traffic {
    pub fn generate(mesh: &Mesh, config: &TrafficConfig) -> Traffic {
        let mut builder = Builder {
            mesh,
            rng: Rng::derive(config.seed, 2),
            start: config.end_ms - config.span_ms,
            end: config.end_ms,
            window_start: config.end_ms - DESIGN_WINDOW_MS,
            events: Vec::with_capacity(config.lines + config.malformed),
        };
        let outbound = if config.outbound {
            config.lines * OUTBOUND_PERCENT / 100
        } else {
            0
        };
        let cron_at = builder.cron_time();
        builder.requests(config.lines - outbound, cron_at);
        builder.outbound_twins(outbound);
        builder.malformed(config.malformed);
        let noise_lines = (config.lines as f64 * config.noise_ratio).round() as usize;
        let noise = builder.noise(noise_lines);
        Traffic {
            events: builder.events,
            noise,
            cron_at,
        }
    }

    /// Every line, in the order kubelet received them (by pod, that is the order istio-proxy wrote them).
    pub fn schedule(&self) -> Vec<Item> {
        let mut keyed: Vec<(i64, u8, u32)> =
            Vec::with_capacity(self.events.len() + self.noise.len());
        keyed.extend(
            self.events
                .iter()
                .enumerate()
                .map(|(i, e)| (e.emitted_ns(), 0, i as u32)),
        );
        keyed.extend(
            self.noise
                .iter()
                .enumerate()
                .map(|(i, n)| (n.emitted_ns(), 1, i as u32)),
        );
        keyed.sort_unstable();
        keyed
            .into_iter()
            .map(|(_, tag, i)| {
                if tag == 0 {
                    Item::Event(i)
                } else {
                    Item::Noise(i)
                }
            })
            .collect()
    }
}

struct Builder<'a> {
    mesh: &'a Mesh,
    rng: Rng,
    /// Exclusive: lines are in `(start, end]`.
    start: i64,
    end: i64,
    window_start: i64,
    events: Vec<Event>,
}

impl Builder<'_> {
    /// The cron job runs an hour before the design window (25h before `--end`),
    /// or halfway before it when the span is shorter; never inside it.
    fn cron_time(&self) -> Option<i64> {
        let before = self.window_start - self.start;
        if before > 2 * 60 * MINUTE_MS {
            Some(self.window_start - 60 * MINUTE_MS)
        } else if before > 10 * MINUTE_MS {
            Some(self.start + before / 2)
        } else {
            None
        }
    }

    /// A time before the design window for a replica's first request, so
    /// that every pod's log (and so the input) starts before the window.
    fn early_time(&mut self) -> Option<i64> {
        let before = self.window_start - self.start;
        (before > 4 * MINUTE_MS).then(|| {
            let hi = self.start + (before / 2).min(30 * MINUTE_MS);
            self.rng.range(self.start + MINUTE_MS, hi + 1)
        })
    }

    /// A time in `(start, end]` outside the guard band; `diurnal` shapes it
    /// like user traffic (busiest mid-afternoon UTC, half as busy at night).
    fn any_time(&mut self, diurnal: bool) -> i64 {
        loop {
            let t = self.rng.range(self.start + 1, self.end + 1);
            if (t - self.window_start).abs() <= GUARD_MS {
                continue;
            }
            if diurnal {
                let hours = (t.rem_euclid(DAY_MS)) as f64 / 3_600_000.0;
                let weight = 1.0 + 0.5 * (std::f64::consts::TAU * (hours - 9.0) / 24.0).sin();
                if self.rng.unit() * 1.5 >= weight {
                    continue;
                }
            }
            return t;
        }
    }

    /// A time inside the design window (clear of the guard band).
    fn window_time(&mut self) -> i64 {
        let lo = (self.window_start + GUARD_MS).max(self.start);
        self.rng.range(lo + 1, self.end + 1)
    }

    fn dest_pod(&mut self, flow: usize) -> u16 {
        let pods = self.mesh.pods_of(FLOWS[flow].dest);
        *self.rng.pick(&pods)
    }

    fn caller(&mut self, flow: usize) -> Caller {
        match FLOWS[flow].caller {
            CallerSpec::Workload(w) => Caller::Pod(*self.rng.pick(&self.mesh.pods_of(w))),
            CallerSpec::Plain(p) => Caller::Plain(p as u8),
        }
    }

    fn event(&mut self, flow: usize, dest_pod: u16, start_ms: i64) -> Event {
        let spec = &FLOWS[flow];
        let caller = self.caller(flow);
        let weights: Vec<u32> = spec.templates.iter().map(|t| t.weight).collect();
        let template = self.rng.weighted(&weights) as u8;
        let outcome = match self.rng.below(1000) {
            0..8 => Outcome::NotFound,
            8..14 => Outcome::UpstreamFailure,
            14..17 => Outcome::DownstreamDisconnect,
            _ => Outcome::Ok,
        };
        let (floor, mean) = spec.latency;
        let duration = match outcome {
            Outcome::UpstreamFailure => self.rng.range(0, 3) as f64,
            Outcome::DownstreamDisconnect => 150.0 + self.rng.exp(1500.0),
            _ => f64::from(floor) + self.rng.exp(f64::from(mean)),
        };
        Event {
            start_ms,
            seed: self.rng.next_u64(),
            duration_ms: duration.min(9_000.0) as u32,
            dest_pod,
            caller,
            flow: flow as u8,
            template,
            outcome,
            side: Side::Inbound,
            forged_xfcc: false,
            cut_permille: 0,
        }
    }

    fn requests(&mut self, inbound: usize, cron_at: Option<i64>) {
        let legacy = (inbound / 100).max(3);
        let vm = (inbound / 250).max(2);
        let cron = if cron_at.is_some() {
            (inbound / 300).clamp(3, 50)
        } else {
            0
        };
        let fixed = CATALOG_REQUESTS + legacy + vm + 1 + cron;
        let proportional = inbound.saturating_sub(fixed);

        // mTLS flows share what is left, by weight; the remainder goes to the busiest.
        let total_weight: usize = FLOWS.iter().map(|f| f.weight as usize).sum();
        let mut counts: Vec<usize> = FLOWS
            .iter()
            .map(|f| proportional * f.weight as usize / total_weight)
            .collect();
        counts[0] += proportional - counts.iter().sum::<usize>();

        for (flow, &count) in counts.iter().enumerate() {
            let replicas = self.mesh.pods_of(FLOWS[flow].dest);
            for i in 0..count {
                let (pod, time) = if i < replicas.len() {
                    let time = self.early_time().unwrap_or_else(|| self.any_time(true));
                    (replicas[i], time)
                } else if flow == WEB_API_TO_RECOMMENDATION && i == replicas.len() {
                    // The newest request is at `--end` exactly: the reader's default
                    // window end is the newest timestamp it sees.
                    (self.dest_pod(flow), self.end)
                } else {
                    let time = self.any_time(true);
                    (self.dest_pod(flow), time)
                };
                let mut event = self.event(flow, pod, time);
                if time == self.end {
                    event.outcome = Outcome::Ok;
                    event.duration_ms = 4;
                }
                self.events.push(event);
            }
        }

        // catalog: fewer than --min-requests mTLS requests in the window.
        let catalog = self.mesh.pods_of(CATALOG)[0];
        for i in 0..CATALOG_REQUESTS {
            let early = if i == 0 { self.early_time() } else { None };
            let time = early.unwrap_or_else(|| self.window_time());
            let event = self.event(SLEEP_TO_CATALOG, catalog, time);
            self.events.push(event);
        }

        // Plaintext callers spread over the span, at least one in the window.
        for (flow, count) in [(LEGACY_SLEEP_TO_WEB_API, legacy), (VM_TO_HTTPBIN, vm)] {
            for i in 0..count {
                let time = if i == 0 {
                    self.window_time()
                } else {
                    self.any_time(false)
                };
                let pod = self.dest_pod(flow);
                let event = self.event(flow, pod, time);
                self.events.push(event);
            }
        }
        let time = self.window_time();
        let pod = self.dest_pod(VM_TO_HTTPBIN);
        let mut forged = self.event(VM_TO_HTTPBIN, pod, time);
        forged.forged_xfcc = true;
        forged.template = 0;
        forged.outcome = Outcome::Ok;
        self.events.push(forged);

        // The legacy cron job: one burst, before the window.
        if let Some(mut time) = cron_at {
            for _ in 0..cron {
                let pod = self.dest_pod(CRON_TO_PURCHASE_HISTORY);
                let mut event = self.event(CRON_TO_PURCHASE_HISTORY, pod, time);
                event.outcome = Outcome::Ok;
                time += i64::from(event.duration_ms) + self.rng.range(200, 3_000);
                self.events.push(event);
            }
        }
    }

    /// The caller's side of `count` requests between meshed pods that are logged.
    fn outbound_twins(&mut self, count: usize) {
        let mut eligible: Vec<usize> = (0..self.events.len())
            .filter(|&i| match self.events[i].caller {
                Caller::Pod(p) => self.mesh.workload_of(p).logged,
                Caller::Plain(_) => false,
            })
            .collect();
        let count = count.min(eligible.len());
        for i in 0..count {
            let j = i + self.rng.below((eligible.len() - i) as u64) as usize;
            eligible.swap(i, j);
        }
        let mut chosen = eligible[..count].to_vec();
        chosen.sort_unstable();
        for i in chosen {
            let mut twin = self.events[i].clone();
            twin.side = Side::Outbound;
            twin.start_ms -= self.rng.range(1, 3);
            twin.duration_ms += self.rng.range(1, 4) as u32;
            self.events.push(twin);
        }
    }

    /// Inbound lines that will be cut short; they are not requests. They are
    /// dated before the design window, so they are counted and shown without
    /// casting doubt on its verdicts (a malformed line in the window keeps
    /// its destination from `ready`: the truth applies that rule too).
    fn malformed(&mut self, count: usize) {
        let weights: Vec<u32> = FLOWS.iter().map(|f| f.weight).collect();
        for _ in 0..count {
            let flow = self.rng.weighted(&weights);
            let hi = (self.window_start - 2 * MINUTE_MS).max(self.start + 2);
            let time = self.rng.range(self.start + 1, hi);
            let pod = self.dest_pod(flow);
            let mut event = self.event(flow, pod, time);
            event.side = Side::Malformed;
            event.cut_permille = self.rng.range(200, 750) as u16;
            self.events.push(event);
        }
    }

    /// pilot-agent and Envoy diagnostics: each proxy's start, then messages over the span.
    fn noise(&mut self, count: usize) -> Vec<Noise> {
        let logged: Vec<u16> = (0..self.mesh.pods.len() as u16)
            .filter(|&p| WORKLOADS[self.mesh.pod(p).workload].logged)
            .collect();
        let startup = count.min(logged.len() * STARTUP_NOISE_LINES);
        let mut noise = Vec::with_capacity(count);
        for i in 0..startup {
            let pod_rank = i % logged.len();
            let line = i / logged.len();
            let ms = self.start + 1 + pod_rank as i64 * 37 + line as i64 * 3;
            noise.push(Noise {
                at_us: ms * 1000 + self.rng.range(0, 1000),
                pod: logged[pod_rank],
                startup: Some(line as u8),
                seed: self.rng.next_u64(),
            });
        }
        for _ in startup..count {
            let lo = (self.start + MINUTE_MS).min(self.end - 1);
            let ms = self.rng.range(lo, self.end);
            noise.push(Noise {
                at_us: ms * 1000 + self.rng.range(0, 1000),
                pod: *self.rng.pick(&logged),
                startup: None,
                seed: self.rng.next_u64(),
            });
        }
        noise
    }
}
