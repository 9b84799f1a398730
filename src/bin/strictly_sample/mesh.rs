//! The sample mesh: workloads, their pods, the callers without a sidecar, and who calls whom.
//!
//! It is the lab's mesh (`istioinaction` plus `httpbin` in `default`) with
//! each verdict of the contract designed in over the default 24h window:
//!
//! | destination | callers | verdict |
//! | --- | --- | --- |
//! | istioinaction/web-api | ingress gateway, sleep (mTLS); default/sleep (plaintext) | blocked |
//! | istioinaction/recommendation | web-api (mTLS) | ready |
//! | istioinaction/purchase-history | recommendation (mTLS); a legacy cron job 25h ago (plaintext) | ready, `last_plaintext` set |
//! | istioinaction/catalog | sleep, 7 requests in the window (mTLS) | insufficient |
//! | default/httpbin | sleep, web-api (mTLS); a VM (plaintext, one with a forged XFCC) | blocked |
//!
//! Every workload runs under a service account of its own name, so the
//! destination SAN (`ns/NS/sa/NAME`) and the pod name agree on the workload.

use crate::rng::Rng;

pub const TRUST_DOMAIN: &str = "cluster.local";

/// kube's `rand.SafeEncodeString` alphabet: no vowels, no 0/1/3.
const KUBE_ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";

/// A workload of the mesh (all have sidecars).
#[derive(Debug)]
pub struct Workload {
    pub namespace: &'static str,
    pub name: &'static str,
    pub service_account: &'static str,
    /// StatefulSet pods are `NAME-0`; Deployment pods `NAME-<rs hash>-<5 chars>`.
    pub statefulset: bool,
    /// One per replica.
    pub pod_ips: &'static [&'static str],
    /// The container port: `inbound|PORT||`.
    pub target_port: u16,
    /// The Service port: the SNI and `outbound|PORT||…` cluster.
    pub service_port: u16,
    pub cluster_ip: &'static str,
    /// An AUDIT AuthorizationPolicy (`notNamespaces: ["istioinaction"]`, GET) selects it.
    pub audit_policy: bool,
    /// Its istio-proxy output is part of the generated log.
    pub logged: bool,
}

impl Workload {
    pub fn spiffe(&self) -> String {
        format!(
            "spiffe://{TRUST_DOMAIN}/ns/{}/sa/{}",
            self.namespace, self.service_account
        )
    }

    pub fn key(&self) -> String {
        format!("{}/{}", self.namespace, self.name)
    }

    /// The `outbound_.PORT_._.NAME.NS.svc.cluster.local` SNI a client sidecar sends with mTLS.
    pub fn sni(&self) -> String {
        format!(
            "outbound_.{}_._.{}.{}.svc.cluster.local",
            self.service_port, self.name, self.namespace
        )
    }

    pub fn outbound_cluster(&self) -> String {
        format!(
            "outbound|{}||{}.{}.svc.cluster.local",
            self.service_port, self.name, self.namespace
        )
    }
}

pub const WEB_API: usize = 0;
pub const RECOMMENDATION: usize = 1;
pub const PURCHASE_HISTORY: usize = 2;
pub const CATALOG: usize = 3;
pub const HTTPBIN: usize = 4;
pub const SLEEP: usize = 5;
pub const INGRESS_GATEWAY: usize = 6;

/// The AUDIT policies' allowed namespace: callers from elsewhere are audited.
pub const AUDIT_ALLOWED_NAMESPACE: &str = "istioinaction";

pub static WORKLOADS: [Workload; 7] = [
    Workload {
        namespace: "istioinaction",
        name: "web-api",
        service_account: "web-api",
        statefulset: false,
        pod_ips: &["10.44.1.11", "10.44.2.17", "10.44.1.23"],
        target_port: 8080,
        service_port: 8080,
        cluster_ip: "10.96.118.25",
        audit_policy: true,
        logged: true,
    },
    Workload {
        namespace: "istioinaction",
        name: "recommendation",
        service_account: "recommendation",
        statefulset: false,
        pod_ips: &["10.44.2.31", "10.44.1.35"],
        target_port: 8080,
        service_port: 8080,
        cluster_ip: "10.96.41.7",
        audit_policy: false,
        logged: true,
    },
    Workload {
        namespace: "istioinaction",
        name: "purchase-history",
        service_account: "purchase-history",
        statefulset: false,
        pod_ips: &["10.44.2.40", "10.44.1.42"],
        target_port: 8080,
        service_port: 8080,
        cluster_ip: "10.96.203.140",
        audit_policy: true,
        logged: true,
    },
    Workload {
        namespace: "istioinaction",
        name: "catalog",
        service_account: "catalog",
        statefulset: true,
        pod_ips: &["10.44.2.50"],
        target_port: 3000,
        service_port: 80,
        cluster_ip: "10.96.7.212",
        audit_policy: false,
        logged: true,
    },
    Workload {
        namespace: "default",
        name: "httpbin",
        service_account: "httpbin",
        statefulset: false,
        pod_ips: &["10.44.1.60"],
        target_port: 80,
        service_port: 8000,
        cluster_ip: "10.96.88.3",
        audit_policy: false,
        logged: true,
    },
    Workload {
        namespace: "istioinaction",
        name: "sleep",
        service_account: "sleep",
        statefulset: false,
        pod_ips: &["10.44.2.9"],
        target_port: 80,
        service_port: 80,
        cluster_ip: "10.96.14.90",
        audit_policy: false,
        logged: false,
    },
    Workload {
        namespace: "istio-system",
        name: "istio-ingressgateway",
        service_account: "istio-ingressgateway-service-account",
        statefulset: false,
        pod_ips: &["10.44.0.12"],
        target_port: 8080,
        service_port: 80,
        cluster_ip: "10.96.0.80",
        audit_policy: false,
        logged: false,
    },
];

/// A caller without a sidecar: its requests arrive in plaintext.
#[derive(Debug)]
pub struct PlainCaller {
    /// Who it is, for the truth file (not in any log line).
    pub name: &'static str,
    pub ip: &'static str,
    /// It reaches the mesh through a proxy of its own that sets `X-Forwarded-For`.
    pub sets_xff: bool,
}

pub const LEGACY_SLEEP: usize = 0;
pub const LEGACY_CRON: usize = 1;
pub const VM: usize = 2;

pub static PLAIN_CALLERS: [PlainCaller; 3] = [
    PlainCaller {
        name: "default/sleep (no sidecar)",
        ip: "10.44.0.7",
        sets_xff: false,
    },
    PlainCaller {
        name: "default/legacy-billing-cron (CronJob, no sidecar)",
        ip: "10.44.3.21",
        sets_xff: false,
    },
    PlainCaller {
        name: "vm/inventory-vm (outside the cluster)",
        ip: "10.128.0.42",
        sets_xff: true,
    },
];

/// Who sent a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Caller {
    /// A meshed pod (index into [`Mesh::pods`]): mTLS.
    Pod(u16),
    /// A [`PLAIN_CALLERS`] entry: plaintext.
    Plain(u8),
}

/// Who calls which workload, and how.
#[derive(Debug)]
pub enum CallerSpec {
    Workload(usize),
    Plain(usize),
}

/// One kind of request a flow sends.
#[derive(Debug)]
pub struct RequestTemplate {
    pub method: &'static str,
    pub path: &'static str,
    pub authority: &'static str,
    pub received: (u32, u32),
    pub sent: (u32, u32),
    pub weight: u32,
}

/// A caller → destination edge of the call graph.
#[derive(Debug)]
pub struct Flow {
    pub caller: CallerSpec,
    pub dest: usize,
    pub templates: &'static [RequestTemplate],
    pub user_agents: &'static [&'static str],
    /// Latency: a floor plus an exponential tail with this mean (ms).
    pub latency: (u32, u32),
    /// Share of the proportional (mTLS) traffic; 0 for flows with fixed counts.
    pub weight: u32,
}

const fn get(
    path: &'static str,
    authority: &'static str,
    sent: (u32, u32),
    weight: u32,
) -> RequestTemplate {
    RequestTemplate {
        method: "GET",
        path,
        authority,
        received: (0, 0),
        sent,
        weight,
    }
}

const fn post(path: &'static str, authority: &'static str, weight: u32) -> RequestTemplate {
    RequestTemplate {
        method: "POST",
        path,
        authority,
        received: (120, 900),
        sent: (60, 240),
        weight,
    }
}

// Indices into FLOWS of the flows the traffic generator treats specially;
// the others (0, 1, 4, 7, 8) share the proportional mTLS traffic by weight.
pub const LEGACY_SLEEP_TO_WEB_API: usize = 2;
pub const WEB_API_TO_RECOMMENDATION: usize = 3;
pub const CRON_TO_PURCHASE_HISTORY: usize = 5;
pub const SLEEP_TO_CATALOG: usize = 6;
pub const VM_TO_HTTPBIN: usize = 9;

const CURL: &[&str] = &["curl/7.69.1"];
const GO: &[&str] = &["Go-http-client/1.1"];

pub static FLOWS: [Flow; 10] = [
    Flow {
        caller: CallerSpec::Workload(INGRESS_GATEWAY),
        dest: WEB_API,
        templates: &[
            get("/", "istioinaction.io", (1050, 1160), 50),
            get("/api/catalog", "istioinaction.io", (2400, 3900), 25),
            post("/api/cart", "istioinaction.io", 15),
            get("/favicon.ico", "istioinaction.io", (0, 0), 3),
        ],
        user_agents: &[
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
            "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_7_1) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Safari/605.1.15",
            "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0",
            "curl/8.5.0",
        ],
        latency: (6, 22),
        weight: 34,
    },
    Flow {
        caller: CallerSpec::Workload(SLEEP),
        dest: WEB_API,
        templates: &[get("/", "web-api.istioinaction:8080", (1050, 1160), 1)],
        user_agents: CURL,
        latency: (5, 18),
        weight: 6,
    },
    Flow {
        caller: CallerSpec::Plain(LEGACY_SLEEP),
        dest: WEB_API,
        templates: &[get("/", "web-api.istioinaction:8080", (1050, 1160), 1)],
        user_agents: CURL,
        latency: (5, 18),
        weight: 0,
    },
    Flow {
        caller: CallerSpec::Workload(WEB_API),
        dest: RECOMMENDATION,
        templates: &[get("/", "recommendation:8080", (640, 720), 1)],
        user_agents: GO,
        latency: (3, 9),
        weight: 28,
    },
    Flow {
        caller: CallerSpec::Workload(RECOMMENDATION),
        dest: PURCHASE_HISTORY,
        templates: &[get("/", "purchase-history:8080", (280, 330), 1)],
        user_agents: GO,
        latency: (1, 4),
        weight: 22,
    },
    Flow {
        caller: CallerSpec::Plain(LEGACY_CRON),
        dest: PURCHASE_HISTORY,
        templates: &[
            get(
                "/export?since=24h",
                "purchase-history.istioinaction:8080",
                (18_000, 64_000),
                3,
            ),
            get("/", "purchase-history.istioinaction:8080", (280, 330), 1),
        ],
        user_agents: &["python-requests/2.31.0"],
        latency: (40, 180),
        weight: 0,
    },
    Flow {
        caller: CallerSpec::Workload(SLEEP),
        dest: CATALOG,
        templates: &[
            get("/items", "catalog.istioinaction", (1800, 2100), 3),
            get("/items/1", "catalog.istioinaction", (180, 220), 1),
        ],
        user_agents: CURL,
        latency: (2, 6),
        weight: 0,
    },
    Flow {
        caller: CallerSpec::Workload(SLEEP),
        dest: HTTPBIN,
        templates: &[
            get("/headers", "httpbin.default:8000", (520, 610), 4),
            get("/get", "httpbin.default:8000", (600, 700), 3),
            get("/status/418", "httpbin.default:8000", (135, 135), 1),
            get("/ip", "httpbin.default:8000", (28, 32), 1),
        ],
        user_agents: CURL,
        latency: (1, 5),
        weight: 6,
    },
    Flow {
        caller: CallerSpec::Workload(WEB_API),
        dest: HTTPBIN,
        templates: &[get("/uuid", "httpbin.default:8000", (53, 53), 1)],
        user_agents: GO,
        latency: (1, 4),
        weight: 4,
    },
    Flow {
        caller: CallerSpec::Plain(VM),
        dest: HTTPBIN,
        templates: &[
            get("/get", "httpbin.default:8000", (600, 700), 3),
            post("/post", "httpbin.default:8000", 1),
        ],
        user_agents: &["Apache-HttpClient/4.5.13 (Java/11.0.20)"],
        latency: (2, 8),
        weight: 0,
    },
];

/// A pod of a meshed workload.
#[derive(Debug)]
pub struct Pod {
    pub workload: usize,
    pub name: String,
    pub ip: &'static str,
    /// Seeds this pod's workload certificates (the XFCC `Hash=`).
    pub cert_seed: u64,
}

/// The mesh with its seed-dependent pod names.
#[derive(Debug)]
pub struct Mesh {
    pub pods: Vec<Pod>,
    /// `--callers N`: inbound mTLS requests come from N addresses (as many
    /// client pods behind one caller identity would), not the caller pod's one.
    pub callers: u32,
}

impl Mesh {
    pub fn new(seed: u64) -> Self {
        let mut rng = Rng::derive(seed, 1);
        let mut pods = Vec::new();
        for (index, workload) in WORKLOADS.iter().enumerate() {
            let hash_len = 9 + rng_bit(&mut rng);
            let rs_hash = kube_name(&mut rng, hash_len);
            for (replica, ip) in workload.pod_ips.iter().enumerate() {
                let name = if workload.statefulset {
                    format!("{}-{replica}", workload.name)
                } else {
                    format!("{}-{rs_hash}-{}", workload.name, kube_name(&mut rng, 5))
                };
                pods.push(Pod {
                    workload: index,
                    name,
                    ip,
                    cert_seed: rng.next_u64(),
                });
            }
        }
        Mesh { pods, callers: 0 }
    }

    /// The pod indices of workload `workload`, in replica order.
    pub fn pods_of(&self, workload: usize) -> Vec<u16> {
        (0..self.pods.len() as u16)
            .filter(|&p| self.pods[usize::from(p)].workload == workload)
            .collect()
    }

    pub fn pod(&self, index: u16) -> &Pod {
        &self.pods[usize::from(index)]
    }

    pub fn workload_of(&self, pod: u16) -> &'static Workload {
        &WORKLOADS[self.pod(pod).workload]
    }
}

fn rng_bit(rng: &mut Rng) -> usize {
    (rng.next_u64() & 1) as usize
}

fn kube_name(rng: &mut Rng, len: usize) -> String {
    (0..len)
        .map(|_| char::from(*rng.pick(KUBE_ALPHABET)))
        .collect()
}
