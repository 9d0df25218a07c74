//! Secrets in what the recorders write: absent by default, present when a test opts in.

use nano::{Ctx, NanoError, ServiceSet};
use nano_record::{CallRecorder, DirectoryRecorder, Redaction, read_fragments};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
/// A sign-in with a secret in its request.
pub struct Login {
    /// Not a secret.
    pub email: String,
    /// A secret.
    pub password: String,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
/// An answer with a secret.
pub struct Session {
    /// Not a secret.
    pub user: String,
    /// A secret.
    pub token: String,
}

mod auth {
    nano::api! { service "auth"; fn login(super::Login) -> super::Session = "auth.Login"; }
}

struct Auth;

impl auth::Handler for Auth {
    async fn login(&self, _: &Ctx, req: Login) -> Result<Session, NanoError> {
        Ok(Session {
            user: req.email,
            token: "tok-9f8e7d".into(),
        })
    }
}

const PASSWORD: &str = "hunter2-correct-horse";
const TOKEN: &str = "tok-9f8e7d";

async fn log_in(hook: impl nano::ClientHook) -> Result<(), NanoError> {
    let set = ServiceSet::builder()
        .service(auth::service(|_| Ok(Auth)))
        .hook(hook)
        .build()?;
    let login = Login {
        email: "ada@example.com".into(),
        password: PASSWORD.into(),
    };
    set.client("test", auth::NAME)?
        .call(&Ctx::new(), login)
        .await?;
    Ok(())
}

#[tokio::test(flavor = "current_thread")]
async fn the_call_recorder_redacts_unless_told_to_keep_secrets() -> Result<(), NanoError> {
    let recorder = CallRecorder::new();
    log_in(recorder.clone()).await?;
    let text = recorder.last_tree().unwrap().to_string();
    assert!(!text.contains(PASSWORD) && !text.contains(TOKEN), "{text}");
    assert!(text.contains(r#""password":"[redacted]""#), "{text}");
    assert!(text.contains(r#""token":"[redacted]""#), "{text}");
    assert!(text.contains("ada@example.com"), "{text}");

    let keeping = CallRecorder::with_redaction(Redaction::keep_secrets());
    log_in(keeping.clone()).await?;
    let text = keeping.last_tree().unwrap().to_string();
    assert!(text.contains(PASSWORD) && text.contains(TOKEN), "{text}");
    Ok(())
}

#[tokio::test(flavor = "current_thread")]
async fn fragments_on_disk_hold_no_secret_unless_told_to() -> Result<(), NanoError> {
    let base = std::env::temp_dir().join(format!("nano-record-redaction-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&base);
    for (dir, keep) in [("redacted", false), ("kept", true)] {
        let dir = base.join(dir);
        let mut recorder = DirectoryRecorder::new(&dir, "p").unwrap();
        if keep {
            recorder = recorder.with_redaction(Redaction::keep_secrets());
        }
        log_in(recorder.clone()).await?;
        recorder.flush();
        assert_eq!(read_fragments(&dir).unwrap().len(), 1);
        let mut written = String::new();
        for entry in std::fs::read_dir(&dir).unwrap() {
            written.push_str(&std::fs::read_to_string(entry.unwrap().path()).unwrap());
        }
        assert_eq!(written.contains(PASSWORD), keep, "{written}");
        assert_eq!(written.contains(TOKEN), keep, "{written}");
        assert!(written.contains("ada@example.com"), "{written}");
    }
    let _ = std::fs::remove_dir_all(&base);
    Ok(())
}
