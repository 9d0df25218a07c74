//! The four services' APIs and the codes they answer.

/// `users`: accounts.
pub mod users {
    use serde::{Deserialize, Serialize};

    /// Creates an account for `email` with `password`.
    ///
    /// With a `signup_key`, creating again with the same key, email and password answers the
    /// account the first call created (`created: false`) instead of `C-DUPLICATE-EMAIL`; the
    /// same key with another email or password is `C-IDEMPOTENCY-KEY-REUSED`.
    #[derive(Clone, Default, PartialEq, Serialize, Deserialize)]
    #[serde(default)]
    pub struct Create {
        /// The account's email address, compared without regard to ASCII case.
        pub email: String,
        /// The account's password. `users` keeps only a salted PBKDF2 hash of it; recordings
        /// and `Debug` output show it as `[redacted]`.
        pub password: String,
        /// The caller's idempotency key, or empty for none.
        pub signup_key: String,
    }

    impl std::fmt::Debug for Create {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.debug_struct("Create")
                .field("email", &self.email)
                .field("password", &"[redacted]")
                .field("signup_key", &self.signup_key)
                .finish()
        }
    }

    /// The account a [`Create`] made or found.
    #[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
    #[serde(default)]
    pub struct Created {
        /// The account.
        pub user: User,
        /// Whether this call created it (false: an earlier call with the same key did).
        pub created: bool,
    }

    /// An account.
    #[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
    #[serde(default)]
    pub struct User {
        /// The account's id, assigned by the database.
        pub id: i64,
        /// The email address it was created with.
        pub email: String,
        /// Whether its welcome mail was sent.
        pub welcomed: bool,
    }

    /// Looks an account up by id.
    #[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
    #[serde(default)]
    pub struct Get {
        /// The account's id.
        pub id: i64,
    }

    /// Looks an account up by email address.
    #[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
    #[serde(default)]
    pub struct GetByEmail {
        /// The email address, compared without regard to ASCII case.
        pub email: String,
    }

    /// Records that an account's welcome mail was sent.
    #[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
    #[serde(default)]
    pub struct MarkWelcomed {
        /// The account's id.
        pub id: i64,
    }

    /// Counts the accounts.
    #[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
    #[serde(default)]
    pub struct Count {}

    /// How many accounts there are.
    #[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
    #[serde(default)]
    pub struct Counted {
        /// The number of accounts.
        pub accounts: i64,
    }

    nano::api! {
        /// Accounts, kept in SQLite.
        service "users";
        /// Creates an account: `POST /users/`.
        fn create(Create) -> Created = "users.Create", POST "/";
        /// An account by id: `POST /users/get`.
        fn get(Get) -> User = "users.Get", POST "/get";
        /// An account by email address: `POST /users/by-email`.
        fn get_by_email(GetByEmail) -> User = "users.GetByEmail", POST "/by-email";
        /// Marks an account's welcome mail as sent: `POST /users/welcomed`.
        fn mark_welcomed(MarkWelcomed) -> User = "users.MarkWelcomed", POST "/welcomed";
        /// The number of accounts: `GET /users/count`.
        fn count(Count) -> Counted = "users.Count", GET "/count";
    }
}

/// `mailer`: the mail provider, wrapped as a service.
pub mod mailer {
    use serde::{Deserialize, Serialize};

    /// Sends the welcome mail to a new account.
    #[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
    #[serde(default)]
    pub struct SendWelcome {
        /// The recipient's address.
        pub to: String,
        /// The account's id; the provider deduplicates sends of one account's welcome mail.
        pub user_id: i64,
    }

    /// A mail the provider accepted.
    #[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
    #[serde(default)]
    pub struct Sent {
        /// The provider's id of the message.
        pub message_id: String,
    }

    nano::api! {
        /// Sends mail through an external HTTP API.
        service "mailer";
        /// Sends a welcome mail: `POST /mailer/welcome`.
        fn send_welcome(SendWelcome) -> Sent = "mailer.SendWelcome", POST "/welcome";
    }
}

/// `signup`: the entry point.
pub mod signup {
    use serde::{Deserialize, Serialize};

    /// A sign-up. Its `Debug` form shows the password as `[redacted]`.
    #[derive(Clone, Default, PartialEq, Serialize, Deserialize)]
    #[serde(default)]
    pub struct SignUp {
        /// The new account's email address.
        pub email: String,
        /// Its password: 8 to 128 characters; a retry with the same idempotency key presents
        /// the same one.
        pub password: String,
        /// A key the client keeps across retries of one sign-up, or empty for none: retries with
        /// the same key create one account and send one mail.
        pub idempotency_key: String,
    }

    impl std::fmt::Debug for SignUp {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.debug_struct("SignUp")
                .field("email", &self.email)
                .field("password", &"[redacted]")
                .field("idempotency_key", &self.idempotency_key)
                .finish()
        }
    }

    /// What happened to the welcome mail.
    #[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
    #[serde(rename_all = "lowercase")]
    pub enum Mail {
        /// Not sent yet: the provider failed; a retry with the same key sends it.
        #[default]
        Pending,
        /// Sent.
        Sent,
    }

    /// A completed sign-up.
    #[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
    #[serde(default)]
    pub struct SignedUp {
        /// The account's id.
        pub user_id: i64,
        /// Its email address, lowercased.
        pub email: String,
        /// The welcome mail's state.
        pub mail: Mail,
        /// A bearer token for the account (scope `user`), for `Authorization: Bearer …`.
        pub token: String,
    }

    /// Asks who the bearer of the request's token is. Needs a token.
    #[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
    #[serde(default)]
    pub struct WhoAmI {}

    /// The account the request's token belongs to.
    #[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
    #[serde(default)]
    pub struct Me {
        /// The account's id, from the token.
        pub user_id: i64,
        /// Its email address, from `users`.
        pub email: String,
    }

    /// Asks for the system's statistics. Needs a token with scope `admin`.
    #[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
    #[serde(default)]
    pub struct Stats {}

    /// The system's statistics.
    #[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
    #[serde(default)]
    pub struct Statistics {
        /// The number of accounts.
        pub accounts: i64,
    }

    nano::api! {
        /// Signs people up: validates, creates the account, sends the welcome mail, issues a
        /// token; answers who a token's bearer is.
        service "signup";
        /// Signs up: `POST /signup/`.
        fn sign_up(SignUp) -> SignedUp = "signup.SignUp", POST "/";
        /// The bearer's account: `GET /signup/me`, with `Authorization: Bearer …`.
        fn who_am_i(WhoAmI) -> Me = "signup.WhoAmI", GET "/me";
        /// The number of accounts: `GET /signup/stats`, with an `admin` token.
        fn stats(Stats) -> Statistics = "signup.Stats", GET "/stats";
    }
}

/// `auth`: bearer tokens.
pub mod auth {
    use serde::{Deserialize, Serialize};

    /// Issues a token for an account.
    #[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
    #[serde(default)]
    pub struct Issue {
        /// The account's id.
        pub user_id: i64,
        /// `user` (the default when empty) or `admin`.
        pub scope: String,
    }

    /// An issued token.
    #[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
    #[serde(default)]
    pub struct Issued {
        /// The bearer token.
        pub token: String,
    }

    /// Asks whether `token` may call `request` of `service`; the edge sends it.
    #[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
    #[serde(default)]
    pub struct Verify {
        /// The bearer token.
        pub token: String,
        /// The service called.
        pub service: String,
        /// The wire name of the request type called.
        pub request: String,
    }

    /// Who a verified token belongs to.
    #[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
    #[serde(default)]
    pub struct Identity {
        /// The account's id.
        pub user_id: i64,
        /// The token's scope.
        pub scope: String,
    }

    nano::api! {
        /// Issues and verifies bearer tokens (HMAC-SHA256 under the token secret). No server
        /// exposes it: `signup` asks it for tokens, the listener asks it about them.
        service "auth";
        /// Issues a token: `POST /auth/issue`.
        fn issue(Issue) -> Issued = "auth.Issue", POST "/issue";
        /// Verifies a token for a call: `POST /auth/verify`.
        fn verify(Verify) -> Identity = "auth.Verify", POST "/verify";
    }
}

/// The codes the services answer besides nano's own.
pub mod codes {
    /// `users`: an account with that email address exists.
    pub const DUPLICATE_EMAIL: &str = "C-DUPLICATE-EMAIL";
    /// `users`: the idempotency key was used for a sign-up with another email address or
    /// another password; nothing is created and no token issued.
    pub const KEY_REUSED: &str = "C-IDEMPOTENCY-KEY-REUSED";
    /// `signup`: the email address does not look like one.
    pub const INVALID_EMAIL: &str = "C-INVALID-EMAIL";
    /// `signup`: the password is too short or too long.
    pub const BAD_PASSWORD: &str = "C-BAD-PASSWORD";
    /// `signup`: the idempotency key is too long or has characters outside `[A-Za-z0-9._-]`.
    pub const BAD_IDEMPOTENCY_KEY: &str = "C-BAD-IDEMPOTENCY-KEY";
    /// `users`: the database failed; nothing was written.
    pub const DATABASE: &str = "S-DATABASE";
    /// `mailer`: no provider is configured (`SIGNUP_MAIL_URL=none`; unset is the built-in
    /// sandbox), or the mail settings are not valid (the server then refuses to start).
    pub const MAIL_UNCONFIGURED: &str = "S-MAIL-UNCONFIGURED";
    /// `mailer`: the provider could not be reached.
    pub const MAIL_UNAVAILABLE: &str = "S-MAIL-UNAVAILABLE";
    /// `mailer`: the provider did not answer in time.
    pub const MAIL_TIMEOUT: &str = "S-MAIL-TIMEOUT";
    /// `mailer`: the provider refused the API key (401 or 403).
    pub const MAIL_UNAUTHORIZED: &str = "S-MAIL-UNAUTHORIZED";
    /// `mailer`: the provider rejected the mail (another 4xx).
    pub const MAIL_REJECTED: &str = "S-MAIL-REJECTED";
    /// `mailer`: the provider failed (5xx).
    pub const MAIL_PROVIDER: &str = "S-MAIL-PROVIDER";
    /// `mailer`: the provider's answer was not the JSON it documents.
    pub const MAIL_BAD_RESPONSE: &str = "S-MAIL-BAD-RESPONSE";
}
