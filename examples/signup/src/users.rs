//! `users`: accounts in SQLite.

use std::fmt;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use nano::{Ctx, NanoError, NewService};
use rusqlite::{Connection, ErrorCode, OptionalExtension, TransactionBehavior, params};

use crate::api::codes;
use crate::api::users::{
    self, Count, Counted, Create, Created, Get, GetByEmail, MarkWelcomed, User,
};

/// The environment variable that names the database file (unset, empty or `:memory:`: in memory).
pub const DB_ENV: &str = "SIGNUP_DB";

/// The environment variable with the accounts `users` makes sure exist when it starts:
/// comma-separated addresses; unset: [`DEFAULT_SEED`]; empty: none.
pub const SEED_ENV: &str = "SIGNUP_SEED";
/// The account every database has unless `SIGNUP_SEED` says otherwise: a demo account (its
/// welcome mail counted as sent), so that a fresh machine, the tests and the recorded scenarios
/// can show a duplicate address without signing it up first.
pub const DEFAULT_SEED: &str = "demo@example.com";

/// How long a write waits for another connection's write lock before it fails.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// The schema. The email's UNIQUE constraint (case-insensitive) is what makes one of many
/// concurrent sign-ups with one address win, whichever process they run in.
const SCHEMA: &str = "
    CREATE TABLE IF NOT EXISTS accounts (
        id INTEGER PRIMARY KEY,
        email TEXT NOT NULL UNIQUE COLLATE NOCASE,
        welcomed INTEGER NOT NULL DEFAULT 0
    );
    CREATE TABLE IF NOT EXISTS signup_keys (
        key TEXT PRIMARY KEY,
        account_id INTEGER NOT NULL REFERENCES accounts(id)
    );
";

/// Where `users` keeps its accounts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Database {
    /// A private in-memory database, gone when the service is.
    Memory,
    /// A database file, created when missing; several processes may share it.
    File(PathBuf),
}

impl Database {
    /// The database `SIGNUP_DB` names.
    pub fn from_env() -> Database {
        Database::from_value(crate::settings::value_of(DB_ENV).as_deref())
    }

    /// The database a value of `SIGNUP_DB` names: a file path, or in memory when the value is
    /// missing, empty or `:memory:`.
    pub fn from_value(value: Option<&str>) -> Database {
        match value.map(str::trim) {
            None | Some("" | ":memory:") => Database::Memory,
            Some(path) => Database::File(path.into()),
        }
    }
}

impl fmt::Display for Database {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Database::Memory => f.write_str("an in-memory database"),
            Database::File(path) => write!(f, "{}", path.display()),
        }
    }
}

/// The `users` service: one SQLite connection.
///
/// Each call runs on tokio's blocking pool, so a slow disk never stalls the runtime's threads.
#[derive(Clone)]
pub struct Users {
    db: Arc<Mutex<Connection>>,
}

impl fmt::Debug for Users {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Users").finish_non_exhaustive()
    }
}

impl Users {
    /// Opens (and creates the tables of) `database`.
    ///
    /// # Errors
    ///
    /// `S-DATABASE` when the database cannot be opened or its schema created.
    pub fn open(database: &Database) -> Result<Users, NanoError> {
        let failed = |err| {
            NanoError::new(codes::DATABASE, format!("cannot open {database}")).with_source(err)
        };
        let conn = match database {
            Database::Memory => Connection::open_in_memory(),
            Database::File(path) => Connection::open(path),
        }
        .map_err(failed)?;
        conn.busy_timeout(BUSY_TIMEOUT).map_err(failed)?;
        if matches!(database, Database::File(_)) {
            // Readers do not block the writer, and the other way round.
            conn.pragma_update(None, "journal_mode", "WAL")
                .map_err(failed)?;
        }
        conn.execute_batch(SCHEMA).map_err(failed)?;
        Ok(Users {
            db: Arc::new(Mutex::new(conn)),
        })
    }

    /// Makes sure an account exists for each of `emails` (their welcome mail counted as sent);
    /// existing accounts are left as they are, so every process sharing a file may seed it.
    ///
    /// # Errors
    ///
    /// `S-DATABASE` when the accounts cannot be written.
    pub fn seed(self, emails: &[String]) -> Result<Users, NanoError> {
        {
            let conn = self.db.lock().unwrap_or_else(|p| p.into_inner());
            for email in emails {
                conn.execute(
                    "INSERT OR IGNORE INTO accounts (email, welcomed) VALUES (?1, 1)",
                    params![email.trim().to_ascii_lowercase()],
                )
                .map_err(database)?;
            }
        }
        Ok(self)
    }

    /// Runs `work` on the connection, on the blocking pool.
    async fn with_db<T: Send + 'static>(
        &self,
        work: impl FnOnce(&mut Connection) -> Result<T, NanoError> + Send + 'static,
    ) -> Result<T, NanoError> {
        let db = Arc::clone(&self.db);
        tokio::task::spawn_blocking(move || {
            let mut conn = db.lock().unwrap_or_else(|p| p.into_inner());
            work(&mut conn)
        })
        .await
        .map_err(|err| NanoError::internal("a database call did not finish").with_source(err))?
    }
}

/// A database error as `S-DATABASE`; nothing of the failed call was written.
fn database(err: rusqlite::Error) -> NanoError {
    NanoError::new(codes::DATABASE, "database failure").with_source(err)
}

fn is_unique_violation(err: &rusqlite::Error) -> bool {
    matches!(err, rusqlite::Error::SqliteFailure(e, _)
        if e.code == ErrorCode::ConstraintViolation
            && e.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE)
}

fn user_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<User> {
    Ok(User {
        id: row.get(0)?,
        email: row.get(1)?,
        welcomed: row.get(2)?,
    })
}

fn create(conn: &mut Connection, req: &Create) -> Result<Created, NanoError> {
    // IMMEDIATE takes the write lock first, so the key lookup and the inserts are one step for
    // every other connection too; dropping the transaction on any error rolls it back whole.
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(database)?;
    if !req.signup_key.is_empty() {
        let earlier = tx
            .query_row(
                "SELECT a.id, a.email, a.welcomed FROM signup_keys k \
                 JOIN accounts a ON a.id = k.account_id WHERE k.key = ?1",
                params![req.signup_key],
                user_from_row,
            )
            .optional()
            .map_err(database)?;
        if let Some(user) = earlier {
            if !user.email.eq_ignore_ascii_case(&req.email) {
                return Err(NanoError::new(
                    codes::KEY_REUSED,
                    "the idempotency key was used for a sign-up with another email address",
                ));
            }
            return Ok(Created {
                user,
                created: false,
            });
        }
    }
    match tx.execute(
        "INSERT INTO accounts (email) VALUES (?1)",
        params![req.email],
    ) {
        Err(err) if is_unique_violation(&err) => {
            return Err(NanoError::new(
                codes::DUPLICATE_EMAIL,
                format!("an account with email {:?} already exists", req.email),
            ));
        }
        other => other.map_err(database)?,
    };
    let id = tx.last_insert_rowid();
    if !req.signup_key.is_empty() {
        tx.execute(
            "INSERT INTO signup_keys (key, account_id) VALUES (?1, ?2)",
            params![req.signup_key, id],
        )
        .map_err(database)?;
    }
    tx.commit().map_err(database)?;
    Ok(Created {
        user: User {
            id,
            email: req.email.clone(),
            welcomed: false,
        },
        created: true,
    })
}

fn find(conn: &Connection, column: &str, value: &dyn rusqlite::ToSql) -> Result<User, NanoError> {
    conn.query_row(
        &format!("SELECT id, email, welcomed FROM accounts WHERE {column} = ?1"),
        [value],
        user_from_row,
    )
    .optional()
    .map_err(database)?
    .ok_or_else(|| NanoError::not_found("no such account"))
}

impl users::Handler for Users {
    async fn create(&self, _ctx: &Ctx, req: Create) -> Result<Created, NanoError> {
        if req.email.is_empty() {
            return Err(NanoError::bad_request("an account needs an email address"));
        }
        self.with_db(move |conn| create(conn, &req)).await
    }

    async fn get(&self, _ctx: &Ctx, req: Get) -> Result<User, NanoError> {
        self.with_db(move |conn| find(conn, "id", &req.id)).await
    }

    async fn get_by_email(&self, _ctx: &Ctx, req: GetByEmail) -> Result<User, NanoError> {
        self.with_db(move |conn| find(conn, "email", &req.email))
            .await
    }

    async fn mark_welcomed(&self, _ctx: &Ctx, req: MarkWelcomed) -> Result<User, NanoError> {
        self.with_db(move |conn| {
            let changed = conn
                .execute(
                    "UPDATE accounts SET welcomed = 1 WHERE id = ?1",
                    params![req.id],
                )
                .map_err(database)?;
            if changed == 0 {
                return Err(NanoError::not_found("no such account"));
            }
            find(conn, "id", &req.id)
        })
        .await
    }

    async fn count(&self, _ctx: &Ctx, _req: Count) -> Result<Counted, NanoError> {
        self.with_db(|conn| {
            let accounts = conn
                .query_row("SELECT COUNT(*) FROM accounts", [], |row| row.get(0))
                .map_err(database)?;
            Ok(Counted { accounts })
        })
        .await
    }
}

/// The addresses a value of `SIGNUP_SEED` names: [`DEFAULT_SEED`] when it is missing, none
/// when it is empty.
pub fn seed_from_value(value: Option<&str>) -> Vec<String> {
    value
        .unwrap_or(DEFAULT_SEED)
        .split(',')
        .map(str::trim)
        .filter(|email| !email.is_empty())
        .map(str::to_owned)
        .collect()
}

/// `users` on the database `SIGNUP_DB` names, with the accounts `SIGNUP_SEED` names, read when
/// the set builds the service.
pub fn users() -> NewService {
    users::service(|_| {
        let seed = seed_from_value(crate::settings::value_of(SEED_ENV).as_deref());
        Users::open(&Database::from_env())?.seed(&seed)
    })
}

/// `users` on `database`, without seeding it.
pub fn users_on(database: Database) -> NewService {
    users::service(move |_| Users::open(&database))
}
