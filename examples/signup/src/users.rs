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
use crate::password;

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
        welcomed INTEGER NOT NULL DEFAULT 0,
        password_hash TEXT
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
    /// PBKDF2 iterations for new password hashes.
    password_rounds: u32,
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
        let mut conn = match database {
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
        add_password_column(&mut conn).map_err(failed)?;
        Ok(Users {
            db: Arc::new(Mutex::new(conn)),
            password_rounds: password::PASSWORD_ROUNDS,
        })
    }

    /// The same service hashing new passwords with `rounds` PBKDF2 iterations instead of
    /// [`PASSWORD_ROUNDS`](crate::PASSWORD_ROUNDS) (at least 1). For tests that sign up
    /// thousands of accounts, where the full cost is minutes of CPU; a server keeps the
    /// default. Every hash records its own rounds, so hashes of either cost verify.
    ///
    /// ```
    /// use signup::{Database, Users};
    ///
    /// let fast = Users::open(&Database::Memory)?.with_password_rounds(1_000);
    /// let set = nano::ServiceSet::builder()
    ///     .service(signup::api::users::service(move |_| Ok(fast)))
    ///     .build()?;
    /// # Ok::<(), nano::NanoError>(())
    /// ```
    #[must_use]
    pub fn with_password_rounds(mut self, rounds: u32) -> Users {
        self.password_rounds = rounds.max(1);
        self
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

/// Adds `accounts.password_hash` to a file made before accounts had passwords, in a write
/// transaction so that processes opening the file at once add it once. Its accounts keep no
/// password: an idempotent retry of their sign-up is refused.
fn add_password_column(conn: &mut Connection) -> rusqlite::Result<()> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let has_column = tx
        .prepare("SELECT 1 FROM pragma_table_info('accounts') WHERE name = 'password_hash'")?
        .exists([])?;
    if !has_column {
        tx.execute("ALTER TABLE accounts ADD COLUMN password_hash TEXT", [])?;
    }
    tx.commit()
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

/// What [`create`] found or made.
enum Creation {
    /// A new account.
    Created(User),
    /// The account an earlier call with the same key created, with its stored password hash
    /// (none for an account made before accounts had passwords).
    Earlier(User, Option<String>),
}

/// The account the idempotency `key` created, with its password hash.
fn by_key(conn: &Connection, key: &str) -> Result<Option<(User, Option<String>)>, NanoError> {
    conn.query_row(
        "SELECT a.id, a.email, a.welcomed, a.password_hash FROM signup_keys k \
         JOIN accounts a ON a.id = k.account_id WHERE k.key = ?1",
        params![key],
        |row| Ok((user_from_row(row)?, row.get(3)?)),
    )
    .optional()
    .map_err(database)
}

/// Creates the account of `req` with the password hash `password_hash`, or finds the one its key
/// created.
fn create(conn: &mut Connection, req: &Create, password_hash: &str) -> Result<Creation, NanoError> {
    // IMMEDIATE takes the write lock first, so the key lookup and the inserts are one step for
    // every other connection too; dropping the transaction on any error rolls it back whole.
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(database)?;
    if !req.signup_key.is_empty()
        && let Some((user, stored)) = by_key(&tx, &req.signup_key)?
    {
        // Nothing written: the caller checks the retry against the account.
        return Ok(Creation::Earlier(user, stored));
    }
    match tx.execute(
        "INSERT INTO accounts (email, password_hash) VALUES (?1, ?2)",
        params![req.email, password_hash],
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
    Ok(Creation::Created(User {
        id,
        email: req.email.clone(),
        welcomed: false,
    }))
}

/// A retry with the key that created `user`: the same account when it presents the same email
/// address and password, `C-IDEMPOTENCY-KEY-REUSED` otherwise (one answer for both, so that
/// the error does not tell which of the two was wrong).
async fn retried(req: Create, user: User, stored: Option<String>) -> Result<Created, NanoError> {
    let reused = || {
        NanoError::new(
            codes::KEY_REUSED,
            "the idempotency key was used for a sign-up with another email address or password",
        )
    };
    if !user.email.eq_ignore_ascii_case(&req.email) {
        return Err(reused());
    }
    let Some(stored) = stored else {
        return Err(reused());
    };
    if !blocking(move || password::verify(&req.password, &stored)).await? {
        return Err(reused());
    }
    Ok(Created {
        user,
        created: false,
    })
}

/// Runs the slow `work` (a password hash) on the blocking pool, outside the database's lock.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, NanoError> + Send + 'static,
) -> Result<T, NanoError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|err| NanoError::internal("a password check did not finish").with_source(err))?
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
        if req.password.is_empty() {
            return Err(NanoError::bad_request("an account needs a password"));
        }
        // A retry is checked before anything is hashed: it needs one slow step, not two.
        if !req.signup_key.is_empty() {
            let key = req.signup_key.clone();
            if let Some((user, stored)) = self.with_db(move |conn| by_key(conn, &key)).await? {
                return retried(req, user, stored).await;
            }
        }
        let (password, rounds) = (req.password.clone(), self.password_rounds);
        let password_hash = blocking(move || password::hash(&password, rounds)).await?;
        let creation = {
            let req = req.clone();
            self.with_db(move |conn| create(conn, &req, &password_hash))
                .await?
        };
        match creation {
            Creation::Created(user) => Ok(Created {
                user,
                created: true,
            }),
            // A concurrent call with the same key created it in the meantime.
            Creation::Earlier(user, stored) => retried(req, user, stored).await,
        }
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
