//! The cost of an in-process call, side by side with a hand-written dynamic call.
//!
//! Run with `cargo bench -p services --bench in_process`. Every variant runs in the same process,
//! interleaved over several rounds; the table reports the median time per call, heap allocations
//! per call (counted by a global allocator) and the ratio to the baselines.
//!
//! - `baseline (lookup per call)`: a `Box<dyn Any + Send>` request through a boxed future behind
//!   an `Arc<dyn Trait>` found in a `HashMap` by name on every call, a boxed `Any` response.
//! - `baseline (resolved once)`: the same with the `Arc` looked up once, as a nano client does.
//! - `baseline (typed slot, resolved once)`: the hand-written form of what a typed nano call
//!   does: the caller lends the callee a `(request, reply)` slot behind `&mut dyn Any`, the
//!   callee boxes a future that takes the request and leaves the reply; one allocation.
//! - `nano hop`: `Client::call` with a typed request to a handler served through the
//!   `api!`-generated dispatch, typed response.
//! - `nano hop, erased`: the same handler through `Client::call_any` with an `AnyRequest`,
//!   downcasting the `AnyResponse`: the envelope path, which hooks and transports take.
//! - `nano hop through a hook`: `Client::call` through a set whose one hook wraps the callee in a
//!   service that passes every call on, as a server's tracing hook does.
//! - `test1 Req` / `test1 GetReq`: whole requests through the real example services.

use std::alloc::{GlobalAlloc, Layout, System};
use std::any::Any;
use std::collections::HashMap;
use std::future::Future;
use std::hint::black_box;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use nano::{AnyRequest, Ctx, Edge, NanoError, Outcome, Service, ServiceSet, SharedService};
use services::api::{svc1, svc2};

/// Counts allocations while `COUNTING` is set, so the timing rounds pay only a relaxed load.
struct CountingAllocator;

static COUNTING: AtomicBool = AtomicBool::new(false);
static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);

// SAFETY: every call is forwarded unchanged to the system allocator.
#[allow(unsafe_code)]
unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if COUNTING.load(Ordering::Relaxed) {
            ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        }
        // SAFETY: forwarded with the caller's layout.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` was allocated by `System` with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if COUNTING.load(Ordering::Relaxed) {
            ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        }
        // SAFETY: `ptr` was allocated by `System` with this layout.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: CountingAllocator = CountingAllocator;

// ---- the hand-written baseline ------------------------------------------------------------

type DynFuture<'a> = Pin<Box<dyn Future<Output = Result<Box<dyn Any + Send>, String>> + Send + 'a>>;

trait DynHandler: Send + Sync {
    fn handle(&self, req: Box<dyn Any + Send>) -> DynFuture<'_>;
}

struct BaselineSvc1;

impl DynHandler for BaselineSvc1 {
    fn handle(&self, req: Box<dyn Any + Send>) -> DynFuture<'_> {
        Box::pin(async move {
            let req = req
                .downcast::<svc1::Req>()
                .map_err(|_| "bad request type".to_owned())?;
            Ok(Box::new(svc1::Resp { value: req.param }) as Box<dyn Any + Send>)
        })
    }
}

struct Baseline {
    services: HashMap<String, Arc<dyn DynHandler>>,
}

impl Baseline {
    async fn call(&self, name: &str, param: String) -> svc1::Resp {
        let service = Arc::clone(&self.services[name]);
        Self::call_resolved(&service, param).await
    }

    async fn call_resolved(service: &Arc<dyn DynHandler>, param: String) -> svc1::Resp {
        let resp = service.handle(Box::new(svc1::Req { param })).await.unwrap();
        *resp.downcast::<svc1::Resp>().unwrap()
    }
}

/// What the typed slot of the hand-written call holds: the request, then the reply.
type Slot = (Option<svc1::Req>, Option<Result<svc1::Resp, String>>);

type SlotFuture<'a> = Pin<Box<dyn Future<Output = ()> + Send + 'a>>;

trait SlotHandler: Send + Sync {
    fn handle<'a>(&'a self, call: &'a mut dyn Any) -> Option<SlotFuture<'a>>;
}

impl SlotHandler for BaselineSvc1 {
    fn handle<'a>(&'a self, call: &'a mut dyn Any) -> Option<SlotFuture<'a>> {
        let call = call.downcast_mut::<Slot>()?;
        Some(Box::pin(async move {
            if let Some(req) = call.0.take() {
                call.1 = Some(Ok(svc1::Resp { value: req.param }));
            }
        }))
    }
}

fn call_slot(
    service: &Arc<dyn SlotHandler>,
    param: String,
) -> impl Future<Output = svc1::Resp> + '_ {
    let mut call: Slot = (Some(svc1::Req { param }), None);
    async move {
        service.handle(&mut call).expect("typed").await;
        call.1.expect("answered").expect("ok")
    }
}

// ---- the same service in nano ---------------------------------------------------------------

/// Answers like `BaselineSvc1`, moving the param into the response without formatting, so both
/// sides do the same (no) string work and only the call machinery is compared. It is served
/// through the `api!`-generated dispatch (`svc1::Served<EchoSvc1>`), as the real `Svc1` is.
struct EchoSvc1;

impl svc1::Handler for EchoSvc1 {
    async fn req(&self, _ctx: &Ctx, req: svc1::Req) -> Result<svc1::Resp, NanoError> {
        Ok(svc1::Resp { value: req.param })
    }
}

/// A hook's service that passes every call on to the next one, as a tracing hook does without
/// its span.
struct PassOn(SharedService);

impl Service for PassOn {
    fn name(&self) -> &str {
        self.0.name()
    }

    fn handle(&self, ctx: Ctx, req: AnyRequest) -> impl Future<Output = Outcome> + Send {
        self.0.handle(ctx, req)
    }
}

// ---- the harness ----------------------------------------------------------------------------

const CALLS_PER_SAMPLE: u64 = 20_000;
const ROUNDS: usize = 31;

/// Runs the given number of calls of one variant on the runtime.
type RunCalls = dyn Fn(&tokio::runtime::Runtime, u64);

struct Variant {
    name: &'static str,
    /// Runs `n` calls.
    run: Box<RunCalls>,
    samples: Vec<Duration>,
    allocations_per_call: f64,
}

fn variant(name: &'static str, run: impl Fn(&tokio::runtime::Runtime, u64) + 'static) -> Variant {
    Variant {
        name,
        run: Box::new(run),
        samples: Vec::new(),
        allocations_per_call: 0.0,
    }
}

fn median_ns_per_call(samples: &[Duration]) -> f64 {
    let mut nanos: Vec<f64> = samples
        .iter()
        .map(|d| d.as_nanos() as f64 / CALLS_PER_SAMPLE as f64)
        .collect();
    nanos.sort_by(f64::total_cmp);
    nanos[nanos.len() / 2]
}

fn main() {
    // `cargo test` runs benches with `--test`-like flags in check mode; only measure on `cargo bench`.
    let quick = std::env::args().any(|arg| arg == "--test");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("runtime");

    let baseline = Arc::new(Baseline {
        services: HashMap::from([(
            svc1::NAME.to_owned(),
            Arc::new(BaselineSvc1) as Arc<dyn DynHandler>,
        )]),
    });
    let resolved = Arc::clone(&baseline.services[svc1::NAME]);
    let slot_resolved: Arc<dyn SlotHandler> = Arc::new(BaselineSvc1);
    let echo_set = ServiceSet::builder()
        .service(svc1::service(|_| Ok(EchoSvc1)))
        .build()
        .expect("set");
    let echo = echo_set.client("bench", svc1::NAME).expect("client");
    let erased = echo.clone();
    let hooked_set = ServiceSet::builder()
        .service(svc1::service(|_| Ok(EchoSvc1)))
        .hook(|_: &Edge, next: SharedService| SharedService::new(PassOn(next)))
        .build()
        .expect("set");
    let hooked = hooked_set.client("bench", svc1::NAME).expect("client");
    let full_set = services::all(ServiceSet::builder()).build().expect("set");
    let svc2_client = full_set.client("bench", svc2::NAME).expect("client");
    let ctx = Ctx::new();

    let mut variants = vec![
        variant("baseline (resolved once)", move |rt, n| {
            rt.block_on(async {
                for _ in 0..n {
                    black_box(Baseline::call_resolved(&resolved, String::new()).await);
                }
            })
        }),
        variant("baseline (typed slot, resolved once)", move |rt, n| {
            rt.block_on(async {
                for _ in 0..n {
                    black_box(call_slot(&slot_resolved, String::new()).await);
                }
            })
        }),
        variant("nano hop", {
            let ctx = ctx.clone();
            move |rt, n| {
                rt.block_on(async {
                    for _ in 0..n {
                        let req = svc1::Req {
                            param: String::new(),
                        };
                        black_box(echo.call(&ctx, req).await.expect("call"));
                    }
                })
            }
        }),
        variant("nano hop, erased (call_any)", {
            let ctx = ctx.clone();
            move |rt, n| {
                rt.block_on(async {
                    for _ in 0..n {
                        let req = AnyRequest::new(svc1::Req {
                            param: String::new(),
                        });
                        let resp = erased.call_any(&ctx, req).await.expect("call");
                        black_box(resp.downcast::<svc1::Resp>().expect("response"));
                    }
                })
            }
        }),
        variant("nano hop through a hook", {
            let ctx = ctx.clone();
            move |rt, n| {
                rt.block_on(async {
                    for _ in 0..n {
                        let req = svc1::Req {
                            param: String::new(),
                        };
                        black_box(hooked.call(&ctx, req).await.expect("call"));
                    }
                })
            }
        }),
        variant("baseline (lookup per call)", {
            let baseline = Arc::clone(&baseline);
            move |rt, n| {
                rt.block_on(async {
                    for _ in 0..n {
                        black_box(baseline.call(black_box(svc1::NAME), String::new()).await);
                    }
                })
            }
        }),
        variant("test1 Req (svc2 -> svc1)", {
            let (ctx, client) = (ctx.clone(), svc2_client.clone());
            move |rt, n| {
                rt.block_on(async {
                    for _ in 0..n {
                        let req = svc2::Req {
                            param: "testval".into(),
                        };
                        black_box(client.call(&ctx, req).await.expect("call"));
                    }
                })
            }
        }),
        variant("test1 GetReq (svc2 -> svc3 -> svc4)", move |rt, n| {
            rt.block_on(async {
                for _ in 0..n {
                    black_box(svc2_client.call(&ctx, svc2::GetReq {}).await.expect("call"));
                }
            })
        }),
    ];

    if quick {
        for v in &variants {
            (v.run)(&rt, 10);
        }
        println!("in_process: smoke-tested {} variants", variants.len());
        return;
    }

    // `BENCH_ONLY=<part of a name> BENCH_CALLS=<n>` runs just that variant, n calls, untimed: for
    // counting instructions per call with callgrind (run twice with different n, subtract).
    if let Ok(only) = std::env::var("BENCH_ONLY") {
        let calls =
            std::env::var("BENCH_CALLS").map_or(10_000, |n| n.parse().expect("BENCH_CALLS"));
        let v = variants
            .iter()
            .find(|v| v.name.contains(&only))
            .expect("BENCH_ONLY matches no variant");
        (v.run)(&rt, calls);
        return;
    }

    // Allocation counts: one pass of CALLS_PER_SAMPLE calls each, after a warm-up.
    for v in &mut variants {
        (v.run)(&rt, 1_000);
        ALLOCATIONS.store(0, Ordering::Relaxed);
        COUNTING.store(true, Ordering::Relaxed);
        (v.run)(&rt, CALLS_PER_SAMPLE);
        COUNTING.store(false, Ordering::Relaxed);
        v.allocations_per_call =
            ALLOCATIONS.load(Ordering::Relaxed) as f64 / CALLS_PER_SAMPLE as f64;
    }

    // Timings: variants interleaved round by round so drift hits all of them alike.
    for _ in 0..ROUNDS {
        for v in &mut variants {
            let started = Instant::now();
            (v.run)(&rt, CALLS_PER_SAMPLE);
            v.samples.push(started.elapsed());
        }
    }

    // The headline is the ratio to the resolved-once baseline: like a client, it finds its
    // callee before the first call. A typed nano hop makes one allocation where that baseline
    // makes three, so the hand-written typed call, which makes one, is shown beside it.
    let median_of = |name: &str| {
        let v = variants
            .iter()
            .find(|v| v.name == name)
            .expect("a variant of that name");
        (median_ns_per_call(&v.samples), v.allocations_per_call)
    };
    let (resolved, _) = median_of("baseline (resolved once)");
    let (lookup, _) = median_of("baseline (lookup per call)");
    let (typed, _) = median_of("baseline (typed slot, resolved once)");
    println!(
        "{:<38} {:>10} {:>12} {:>12} {:>12}",
        "variant", "ns/call", "allocs/call", "vs resolved", "vs lookup"
    );
    for v in &variants {
        let ns = median_ns_per_call(&v.samples);
        println!(
            "{:<38} {:>10.1} {:>12.2} {:>11.2}x {:>11.2}x",
            v.name,
            ns,
            v.allocations_per_call,
            ns / resolved,
            ns / lookup
        );
    }
    let (hop, allocations) = median_of("nano hop");
    let (erased, _) = median_of("nano hop, erased (call_any)");
    println!(
        "headline: nano hop {:.2}x of the resolved-once baseline (target at most 1.25x), \
         {allocations:.2} allocations per hop (target at most 3); {:.2}x of the hand-written \
         typed call; erased {:.2}x of the resolved-once baseline",
        hop / resolved,
        hop / typed,
        erased / resolved,
    );
}
