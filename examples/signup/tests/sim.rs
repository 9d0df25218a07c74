//! The simulator finding a real bug on purpose: a `signup` without the idempotency key sends two
//! welcome mails to one account when its request is delivered twice (as a retrying transport or
//! client delivers it). The simulation runs the real `users` on an in-memory SQLite database, the
//! real `auth`, and a fake `mailer` that counts the mails it is asked to send, on the simulator's
//! paused clock. The real `mailer` either talks HTTP to a provider, which the paused clock cannot
//! wait for, or answers from its sandbox, which keeps no count; the point here is how often
//! `signup` asks.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use nano::{Client, Ctx, NanoError, NewService, ServiceSet};
use nano_test::TransportFidelity;
use nano_test::sim::{
    BoxError, EdgeFaults, FaultPlan, InjectedFault, Latency, Network, Simulation,
};
use signup::api::signup::{self as api, Mail, Me, SignUp, SignedUp, Statistics, Stats, WhoAmI};
use signup::api::{auth, codes, mailer, users};
use signup::{Database, TokenSecret};

/// The caller of `signup` in the simulation: the sign-up form's backend, say.
const CLIENT: &str = "client";
/// How many people sign up in one run, one after the other.
const SIGN_UPS: usize = 20;

const ACCOUNT_EXISTS: &str = "every answered sign-up has its account";
const ONE_MAIL: &str = "one welcome mail per account";
const MAILED_WHEN_SENT: &str = "a sign-up answered as mailed was mailed";

/// The token secret of the simulated `auth`.
const SECRET: &str = "a token secret for the simulated sign-ups";

/// `signup` as it would be written without the idempotency key. It takes an address that
/// already has an account for the same person trying again and, so that a retry still gets its
/// welcome mail, sends it again: it cannot tell a repeated delivery from a new attempt, and a
/// repeated delivery mails the account twice. Its sign-up is otherwise as in the real `signup`.
struct Unkeyed {
    users: Client,
    mailer: Client,
    auth: Client,
}

impl api::Handler for Unkeyed {
    async fn sign_up(&self, ctx: &Ctx, req: SignUp) -> Result<SignedUp, NanoError> {
        let email = req.email.trim().to_ascii_lowercase();
        let create = users::Create {
            email: email.clone(),
            password: req.password.clone(),
            signup_key: String::new(),
        };
        let user = match self.users.call(ctx, create).await {
            Ok(created) => created.user,
            Err(err) if err.has_code(codes::DUPLICATE_EMAIL) => {
                let existing = users::GetByEmail {
                    email: email.clone(),
                };
                self.users.call(ctx, existing).await?
            }
            Err(err) => return Err(err),
        };
        let send = mailer::SendWelcome {
            to: email.clone(),
            user_id: user.id,
        };
        let mail = match self.mailer.call(ctx, send).await {
            Ok(_) => {
                let _ = self
                    .users
                    .call(ctx, users::MarkWelcomed { id: user.id })
                    .await;
                Mail::Sent
            }
            Err(_) => Mail::Pending,
        };
        let issue = auth::Issue {
            user_id: user.id,
            scope: String::new(),
        };
        let issued = self.auth.call(ctx, issue).await?;
        Ok(SignedUp {
            user_id: user.id,
            email,
            mail,
            token: issued.token,
        })
    }

    // The simulation sends sign-ups only.
    async fn who_am_i(&self, _ctx: &Ctx, _req: WhoAmI) -> Result<Me, NanoError> {
        Err(NanoError::internal("not part of this simulation"))
    }

    async fn stats(&self, _ctx: &Ctx, _req: Stats) -> Result<Statistics, NanoError> {
        Err(NanoError::internal("not part of this simulation"))
    }
}

fn unkeyed() -> NewService {
    api::service(|deps| {
        Ok(Unkeyed {
            users: deps.client(users::NAME)?,
            mailer: deps.client(mailer::NAME)?,
            auth: deps.client(auth::NAME)?,
        })
    })
}

/// The welcome mails the fake mailer was asked to send, by account id.
#[derive(Clone, Default)]
struct Mails(Arc<Mutex<BTreeMap<i64, u32>>>);

impl Mails {
    fn of(&self, user_id: i64) -> u32 {
        self.0
            .lock()
            .unwrap()
            .get(&user_id)
            .copied()
            .unwrap_or_default()
    }

    /// A `mailer` that accepts every mail and counts it, as a provider without deduplication
    /// would send it.
    fn service(&self) -> NewService {
        let mails = self.clone();
        mailer::service(move |_| Ok(FakeMailer(mails)))
    }
}

struct FakeMailer(Mails);

impl mailer::Handler for FakeMailer {
    async fn send_welcome(
        &self,
        _ctx: &Ctx,
        req: mailer::SendWelcome,
    ) -> Result<mailer::Sent, NanoError> {
        let mut mails = self.0.0.lock().unwrap();
        let count = mails.entry(req.user_id).or_default();
        *count += 1;
        Ok(mailer::Sent {
            message_id: format!("welcome-{}-{count}", req.user_id),
        })
    }
}

/// What a run hands to the invariants.
struct World {
    net: Network,
    users: Client,
    mails: Mails,
    /// The answers the client got, in order.
    answers: Vec<SignedUp>,
}

/// A run: the sign-up variant `signup` with the real `users` (in-memory SQLite), the real
/// `auth` and the fake mailer, every call through the simulated network and the HTTP wire's
/// encoding; `SIGN_UPS` people sign up with their own address and key, and errors are what the
/// client lives with.
async fn sign_ups(net: Network, signup: fn() -> NewService) -> Result<World, BoxError> {
    let mails = Mails::default();
    let set = ServiceSet::builder()
        .service(signup())
        // Thousands of sign-ups: cheap password hashes (what is hashed does not matter here).
        .service(signup::api::users::service(|_| {
            Ok(signup::Users::open(&Database::Memory)?.with_password_rounds(1_000))
        }))
        .service(signup::auth_with(TokenSecret::new(SECRET)?))
        .service(mails.service())
        .hook(TransportFidelity::new())
        .hook(net.hook())
        .build()?;
    let front = set.client(CLIENT, api::NAME)?;
    let mut answers = Vec::new();
    for i in 0..SIGN_UPS {
        let request = SignUp {
            email: format!("person{i}@example.com"),
            password: "correct horse".into(),
            idempotency_key: format!("signup-{i}"),
        };
        if let Ok(answer) = front.call(&net.ctx(), request).await {
            answers.push(answer);
        }
    }
    Ok(World {
        users: set.client("check", users::NAME)?,
        net,
        mails,
        answers,
    })
}

/// The simulation of `plan` with the sign-up system's invariants.
fn simulation(plan: FaultPlan) -> Simulation<World> {
    Simulation::new(plan)
        .invariant(ACCOUNT_EXISTS, async |world: &World| {
            for answer in &world.answers {
                let get = users::Get { id: answer.user_id };
                let account = world.users.call(&world.net.ctx(), get).await?;
                if account.email != answer.email {
                    return Err(format!(
                        "account {} is {}, not {}",
                        answer.user_id, account.email, answer.email
                    )
                    .into());
                }
            }
            Ok(())
        })
        .invariant(ONE_MAIL, async |world: &World| {
            let mails = world.mails.0.lock().unwrap();
            match mails.iter().find(|(_, count)| **count > 1) {
                Some((id, count)) => Err(format!("account {id} got {count} welcome mails").into()),
                None => Ok(()),
            }
        })
        .invariant(MAILED_WHEN_SENT, async |world: &World| {
            match world
                .answers
                .iter()
                .find(|answer| answer.mail == Mail::Sent && world.mails.of(answer.user_id) == 0)
            {
                Some(answer) => {
                    Err(format!("{} was told its mail went out; it did not", answer.email).into())
                }
                None => Ok(()),
            }
        })
}

/// The same plan for both variants: latency everywhere, and the faults of a real network between
/// the client and `signup` and between `signup` and `users` — lost responses and duplicate
/// deliveries. (Duplicates towards the mailer would mail twice whatever `signup` does; that is
/// the provider's deduplication to handle, not `signup`'s.)
fn plan() -> FaultPlan {
    let latency = Latency::uniform(Duration::from_millis(1), Duration::from_millis(20));
    let network = EdgeFaults::new()
        .latency(latency)
        .lose_response_rate(0.1)
        .duplicate_rate(0.15);
    FaultPlan::new(9)
        .all_edges(EdgeFaults::new().latency(latency))
        .edge(CLIENT, api::NAME, network.clone())
        .edge(api::NAME, users::NAME, network)
}

#[test]
fn the_simulator_finds_the_sign_up_without_idempotency_key_and_shrinks_it_to_one_duplicate() {
    let simulation = simulation(plan());
    let seed = simulation.plan().seed;
    let failure = simulation
        .run_and_shrink(|net| sign_ups(net, unkeyed))
        .unwrap_err();

    // Found: the run mailed an account twice, and only that invariant broke.
    let broken: Vec<_> = failure.original.report.broken_invariants().collect();
    assert_eq!(broken, [ONE_MAIL], "{failure}");
    assert!(
        failure
            .original
            .message
            .starts_with("one welcome mail per account: account "),
        "{failure}"
    );
    // The run injected many faults: latency on every call, lost responses, duplicates.
    let original = &failure.original.schedule;
    assert!(original.len() > 40, "{failure}");
    assert!(
        original
            .iter()
            .any(|f| f.fault == InjectedFault::LoseResponse),
        "{failure}"
    );

    // Shrunk to the single fault that matters: one sign-up delivered twice to `signup`.
    assert_eq!(failure.minimal.schedule.len(), 1, "{failure}");
    let only = &failure.minimal.schedule[0];
    assert_eq!(only.fault, InjectedFault::Duplicate);
    assert_eq!(
        (only.call.caller.as_str(), only.call.callee.as_str()),
        (CLIENT, api::NAME)
    );
    assert!(original.contains(only), "{failure}");
    assert_eq!(
        failure.minimal.message,
        format!(
            "one welcome mail per account: account {} got 2 welcome mails",
            only.call.nth
        )
    );

    // The report says how to replay it, with the seed.
    let text = failure.to_string();
    assert!(
        text.contains(&format!("seed: {seed} (replay with NANO_SIM_SEED={seed})")),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "smallest fault schedule that still breaks it (1 of {} faults",
            original.len()
        )),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "  - client -> signup call #{}: delivered twice",
            only.call.nth
        )),
        "{text}"
    );
    // And `check`, the assertion tests use, fails with that report.
    let panic =
        std::panic::catch_unwind(|| simulation.check(|net| sign_ups(net, unkeyed))).unwrap_err();
    let message = panic.downcast_ref::<String>().unwrap();
    assert_eq!(message.trim_end(), text.trim_end());
}

#[test]
fn the_real_sign_up_passes_the_same_plan_and_the_fault_that_breaks_the_other() {
    let simulation = simulation(plan());
    let report = simulation.check(|net| sign_ups(net, signup::signup));
    // The plan did what it says to the real signup too.
    assert!(report.faults.duplicated > 0, "{report}");
    assert!(report.faults.responses_lost > 0, "{report}");
    let counts: Vec<_> = report
        .invariants
        .iter()
        .map(|c| (c.name.as_str(), c.passed, c.failed))
        .collect();
    assert_eq!(
        counts,
        [
            (ACCOUNT_EXISTS, 1, 0),
            (ONE_MAIL, 1, 0),
            (MAILED_WHEN_SENT, 1, 0)
        ]
    );

    // The exact delivery that mails the other variant's account twice is harmless here.
    let failure = simulation
        .run_and_shrink(|net| sign_ups(net, unkeyed))
        .unwrap_err();
    let replayed = simulation
        .replay(&failure.minimal.schedule, |net| {
            sign_ups(net, signup::signup)
        })
        .unwrap();
    assert_eq!(replayed.faults.duplicated, 1);
    assert!(
        replayed.invariants.iter().all(|c| c.failed == 0),
        "{replayed}"
    );
}

#[test]
fn the_invariants_catch_what_they_name() {
    // Each invariant fails on a world that breaks it, so none passes by construction.
    let simulation = simulation(FaultPlan::new(1));
    let failure = simulation
        .run(|net| async move {
            let mut world = sign_ups(net, signup::signup).await?;
            // An answer for an account that does not exist, one that claims a mail never sent,
            // and a second mail to account 1.
            world.answers.push(SignedUp {
                user_id: 999,
                email: "ghost@example.com".into(),
                mail: Mail::Pending,
                token: String::new(),
            });
            world.answers.push(SignedUp {
                user_id: 1000,
                email: "unmailed@example.com".into(),
                mail: Mail::Sent,
                token: String::new(),
            });
            *world.mails.0.lock().unwrap().get_mut(&1).unwrap() += 1;
            Ok(world)
        })
        .unwrap_err();
    let broken: Vec<_> = failure.report.broken_invariants().collect();
    assert_eq!(broken, [ACCOUNT_EXISTS, ONE_MAIL, MAILED_WHEN_SENT]);
    assert!(
        failure.message.contains("C-NOT-FOUND") || failure.message.contains("no such account"),
        "{}",
        failure.message
    );
    assert!(
        failure.message.contains("account 1 got 2 welcome mails"),
        "{}",
        failure.message
    );
    assert!(
        failure
            .message
            .contains("unmailed@example.com was told its mail went out; it did not"),
        "{}",
        failure.message
    );
}
