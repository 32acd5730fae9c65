//! A private PostgreSQL cluster living inside the data directory, used when no
//! DATABASE_URL is configured (and by the tests, which share one cluster across
//! processes). It uses the machine's own PostgreSQL binaries.
//!
//! The server listens only on a Unix socket in a 0700 directory owned by the
//! server user, so `trust` auth is safe and it can never collide with a system
//! server on TCP port 5432.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::time::{Duration, Instant};

use nix::fcntl::{Flock, FlockArg};
use nix::unistd::{Gid, Uid, User};
use tokio::process::Command;

const PORT: u16 = 5432;
/// sun_path is 108 bytes on Linux (104 on BSDs); stay well clear of both.
const MAX_SOCKET_PATH: usize = 100;
const TAIL_LINES: usize = 20;
/// C locale: no dependency on what locales the machine has generated.
const INITDB_ARGS: &str = "-U postgres --auth=trust --no-locale --encoding=UTF8";
const DATABASE: &str = "ecoupon";
/// Client/server defaults from the caller's environment must not leak in.
const PG_ENV: &str = "PGDATA PGPORT PGHOST PGUSER PGDATABASE PGOPTIONS";

#[derive(Debug, thiserror::Error)]
pub enum EmbeddedError {
    #[error("PostgreSQL server binaries (initdb, pg_ctl) not found: install PostgreSQL (e.g. `apt-get install postgresql`) or set DATABASE_URL to an existing database")]
    BinariesNotFound,
    #[error("running as root needs a 'postgres' system user to own the private cluster (PostgreSQL refuses to run as root); create one or set DATABASE_URL")]
    NoPostgresUser,
    #[error("permission problem with the private PostgreSQL cluster: {0}")]
    Permission(String),
    #[error("I/O error on {}: {error}", path.display())]
    Io { path: PathBuf, error: io::Error },
    #[error("initdb failed ({0})")]
    InitdbFailed(String),
    #[error("PostgreSQL server failed to start ({0})")]
    StartFailed(String),
    #[error("pg_ctl {0} failed ({1})")]
    PgCtl(&'static str, String),
    #[error("private PostgreSQL cluster: {0}")]
    Database(String),
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> EmbeddedError + '_ {
    move |error| EmbeddedError::Io {
        path: path.to_path_buf(),
        error,
    }
}

#[derive(Debug, Clone)]
pub struct PgBinaries {
    pub bindir: PathBuf,
}

fn is_executable(path: &Path) -> bool {
    fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

fn has_server_binaries(dir: &Path) -> bool {
    // Relative PATH entries would break once we change the working directory.
    let executable = |name| is_executable(&dir.join(name));
    dir.is_absolute() && executable("initdb") && executable("pg_ctl")
}

/// Debian/Ubuntu keep initdb and pg_ctl out of $PATH, hence the fallbacks.
pub fn find_binaries() -> Result<PgBinaries, EmbeddedError> {
    let found = |bindir: PathBuf| has_server_binaries(&bindir).then_some(PgBinaries { bindir });
    if let Some(bins) =
        std::env::var_os("PATH").and_then(|p| std::env::split_paths(&p).find_map(&found))
    {
        return Ok(bins);
    }
    let pg_config = std::process::Command::new("pg_config")
        .arg("--bindir")
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output();
    if let Some(out) = pg_config.ok().filter(|o| o.status.success()) {
        let dir = String::from_utf8_lossy(&out.stdout).trim().to_owned();
        if let Some(bins) = found(PathBuf::from(dir)) {
            return Ok(bins);
        }
    }
    let version = |e: &fs::DirEntry| -> Option<Vec<u32>> {
        let name = e.file_name().into_string().ok()?;
        name.split('.').map(|p| p.parse().ok()).collect()
    };
    let mut versions: Vec<_> = fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| Some((version(&e)?, e.path().join("bin"))))
        .collect();
    versions.sort();
    let mut newest_first = versions.into_iter().rev();
    newest_first
        .find_map(|(_, dir)| found(dir))
        .ok_or(EmbeddedError::BinariesNotFound)
}

/// Unix socket paths are length-limited, so deep data dirs get a socket dir
/// in /tmp named after the cluster (stable across runs, distinct per root).
fn socket_dir_for(root: &Path) -> PathBuf {
    if root.join(format!(".s.PGSQL.{PORT}")).as_os_str().len() <= MAX_SOCKET_PATH {
        return root.to_path_buf();
    }
    let digest = hex::encode(crate::domain::token::sha256(root.as_os_str().as_bytes()));
    PathBuf::from(format!("/tmp/ecoupon-pg-{}", &digest[..12]))
}

/// The account the server runs as when we are root (PostgreSQL refuses root).
#[derive(Debug, Clone)]
struct RunAs {
    name: String,
    uid: Uid,
    gid: Gid,
}

fn server_user() -> Result<Option<RunAs>, EmbeddedError> {
    if !nix::unistd::geteuid().is_root() {
        return Ok(None);
    }
    match User::from_name("postgres") {
        Ok(Some(u)) => Ok(Some(RunAs {
            name: u.name,
            uid: u.uid,
            gid: u.gid,
        })),
        _ => Err(EmbeddedError::NoPostgresUser),
    }
}

/// The server user must be able to reach the cluster; a data dir under /root
/// (0700) is the classic trap, and PostgreSQL's own error for it is obscure.
fn check_traversable(root: &Path, user: &RunAs) -> Result<(), EmbeddedError> {
    let cname = std::ffi::CString::new(user.name.as_bytes()).expect("user names have no NUL");
    let groups = nix::unistd::getgrouplist(&cname, user.gid).unwrap_or_else(|_| vec![user.gid]);
    for dir in root.ancestors().skip(1) {
        let meta = match fs::metadata(dir) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            other => other.map_err(io_err(dir))?,
        };
        let mode = meta.mode();
        let bit = if meta.uid() == user.uid.as_raw() {
            0o100
        } else if groups.iter().any(|g| g.as_raw() == meta.gid()) {
            0o010
        } else {
            0o001
        };
        if mode & bit == 0 {
            return Err(EmbeddedError::Permission(format!(
                "directory {} (mode {:04o}) is not traversable by the '{}' user that must run the server for {}; use a --data-dir elsewhere (e.g. under /var/lib) or set DATABASE_URL",
                dir.display(), mode & 0o7777, user.name, root.display()
            )));
        }
    }
    Ok(())
}

/// Hands our own files to the server user. Directories already owned by it
/// (notably a running cluster's data dir, written by the server) are not
/// descended into.
fn chown_tree(path: &Path, user: &RunAs, force_descend: bool) -> Result<(), EmbeddedError> {
    let meta = match fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(io_err(path)(e)),
    };
    let owned = meta.uid() == user.uid.as_raw() && meta.gid() == user.gid.as_raw();
    if !owned {
        std::os::unix::fs::lchown(path, Some(user.uid.as_raw()), Some(user.gid.as_raw()))
            .map_err(io_err(path))?;
    }
    if meta.is_dir() && (!owned || force_descend) {
        for entry in fs::read_dir(path).map_err(io_err(path))? {
            chown_tree(&entry.map_err(io_err(path))?.path(), user, false)?;
        }
    }
    Ok(())
}

fn is_zombie(pid: u32) -> bool {
    // Field 3 of /proc/<pid>/stat, after the parenthesized (arbitrary) comm.
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    stat.rsplit_once(')')
        .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z'))
}

fn live_process_in(dir: &Path) -> Option<u32> {
    fs::read_dir("/proc").ok()?.flatten().find_map(|e| {
        let pid: u32 = e.file_name().to_str()?.parse().ok()?;
        (fs::read_link(e.path().join("cwd")).ok()? == dir && !is_zombie(pid)).then_some(pid)
    })
}

fn tail(text: &[u8]) -> String {
    let text = String::from_utf8_lossy(text);
    let lines: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    let tail = lines[lines.len().saturating_sub(TAIL_LINES)..].join(" | ");
    if tail.is_empty() {
        "(no output)".into()
    } else {
        tail
    }
}

/// Only what the server logged since `offset`, i.e. during this start attempt.
fn log_tail(path: &Path, offset: u64) -> String {
    let read = || -> io::Result<Vec<u8>> {
        let mut f = File::open(path)?;
        let len = f.metadata()?.len();
        f.seek(SeekFrom::Start(offset.max(len.saturating_sub(16 * 1024))))?;
        let mut buf = Vec::new();
        f.read_to_end(&mut buf)?;
        Ok(buf)
    };
    read().map_or_else(|e| format!("(unreadable: {e})"), |b| tail(&b))
}

/// "exit status: 1: <last stderr lines>"
fn failure(out: &Output) -> String {
    format!("{}: {}", out.status, tail(&out.stderr))
}

fn pg_error_text(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("{}: {}", db.severity(), db.message()),
        None => match std::error::Error::source(e) {
            Some(cause) => format!("{e}: {cause}"),
            None => e.to_string(),
        },
    }
}

async fn run(cmd: &mut Command) -> Result<Output, EmbeddedError> {
    let program = PathBuf::from(cmd.as_std().get_program());
    cmd.output().await.map_err(io_err(&program))
}

fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

#[derive(Debug, Clone)]
pub struct EmbeddedPostgres {
    root: PathBuf,
    socket_dir: PathBuf,
    bins: PgBinaries,
    data_dir: PathBuf,
    log_file: PathBuf,
    run_as: Option<RunAs>,
    started_here: bool,
}

impl EmbeddedPostgres {
    /// Initializes (first run) and starts the cluster under `root`, or reuses
    /// a server already running for it, then makes sure the `ecoupon`
    /// database exists. Safe to call concurrently from several processes.
    pub async fn start(root: &Path) -> Result<EmbeddedPostgres, EmbeddedError> {
        let bins = find_binaries()?;
        let run_as = server_user()?;
        if let Some(user) = &run_as {
            // Fail before creating anything we could not use anyway.
            check_traversable(&std::path::absolute(root).map_err(io_err(root))?, user)?;
        }
        fs::create_dir_all(root).map_err(io_err(root))?;
        let root = root.canonicalize().map_err(io_err(root))?;
        if root.to_str().is_none() {
            // The path ends up inside a shell command line and a GUC value.
            return Err(io_err(&root)(io::Error::other("path is not valid UTF-8")));
        }
        if let Some(user) = &run_as {
            check_traversable(&root, user)?;
        }
        let mut pg = EmbeddedPostgres {
            socket_dir: socket_dir_for(&root),
            data_dir: root.join("data"),
            log_file: root.join("postgres.log"),
            root,
            bins,
            run_as,
            started_here: false,
        };
        let _lock = pg.lock().await?;
        pg.prepare_dirs()?;
        let initialized = pg.data_dir.join("PG_VERSION").exists();
        if initialized && pg.is_running().await? {
            tracing::debug!(root = %pg.root.display(), "reusing running private PostgreSQL");
        } else {
            if !initialized {
                pg.initdb().await?;
            }
            pg.pg_ctl_start().await?;
            pg.started_here = true;
        }
        pg.ensure_database(DATABASE).await?;
        Ok(pg)
    }

    /// Fast shutdown (rolls back open transactions, no crash recovery needed
    /// on next start). Not done on drop: other processes may share the server.
    pub async fn stop(&self) -> Result<(), EmbeddedError> {
        let _lock = self.lock().await?;
        if !self.is_running().await? {
            return Ok(());
        }
        let stop = ["-m", "fast", "-w", "-t", "60", "stop"];
        let out = run(self.command("pg_ctl", &self.data_dir).args(stop)).await?;
        if !out.status.success() {
            return Err(EmbeddedError::PgCtl("stop", failure(&out)));
        }
        tracing::info!(root = %self.root.display(), "stopped private PostgreSQL");
        Ok(())
    }

    pub fn connect_config(&self, dbname: &str) -> tokio_postgres::Config {
        let mut config = tokio_postgres::Config::new();
        config
            .host_path(&self.socket_dir)
            .port(PORT)
            .user("postgres")
            .dbname(dbname);
        config
    }

    /// Whether this `start` launched the server (rather than reusing one), i.e.
    /// whether this caller is the one expected to stop it.
    pub fn started_here(&self) -> bool {
        self.started_here
    }

    pub fn socket_dir(&self) -> &Path {
        &self.socket_dir
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// flock (not fcntl) locks belong to the open file description, so this
    /// also serializes concurrent callers within one process.
    async fn lock(&self) -> Result<Flock<File>, EmbeddedError> {
        let path = self.root.join(".lock");
        let task = tokio::task::spawn_blocking(move || {
            let file = OpenOptions::new()
                .create(true)
                .truncate(false)
                .write(true)
                .open(&path)
                .map_err(io_err(&path))?;
            Flock::lock(file, FlockArg::LockExclusive)
                .map_err(|(_, errno)| io_err(&path)(errno.into()))
        });
        task.await
            .unwrap_or_else(|e| Err(io_err(&self.root)(io::Error::other(e))))
    }

    fn prepare_dirs(&self) -> Result<(), EmbeddedError> {
        // The root doubles as the socket dir, which is what makes trust auth safe.
        fs::set_permissions(&self.root, fs::Permissions::from_mode(0o700))
            .map_err(io_err(&self.root))?;
        if let Some(user) = &self.run_as {
            chown_tree(&self.root, user, true)?;
        }
        if self.socket_dir == self.root {
            return Ok(());
        }
        let dir = &self.socket_dir;
        match fs::DirBuilder::new().mode(0o700).create(dir) {
            Err(e) if e.kind() != io::ErrorKind::AlreadyExists => return Err(io_err(dir)(e)),
            _ => {}
        }
        // /tmp is shared: refuse a dir (or symlink) planted by someone else.
        let meta = fs::symlink_metadata(dir).map_err(io_err(dir))?;
        let me = nix::unistd::geteuid().as_raw();
        let server_uid = self.run_as.as_ref().map_or(me, |u| u.uid.as_raw());
        if !meta.is_dir() || (meta.uid() != me && meta.uid() != server_uid) {
            return Err(EmbeddedError::Permission(format!(
                "socket directory {} is not a directory owned by uid {server_uid}; remove it and retry",
                dir.display()
            )));
        }
        fs::set_permissions(dir, fs::Permissions::from_mode(0o700)).map_err(io_err(dir))?;
        if let Some(user) = &self.run_as {
            chown_tree(dir, user, false)?;
        }
        Ok(())
    }

    /// initdb or pg_ctl on `pgdata`, as the server user.
    fn command(&self, program: &str, pgdata: &Path) -> Command {
        let mut cmd = Command::new(self.bins.bindir.join(program));
        cmd.arg("-D").arg(pgdata);
        // The caller's cwd/HOME may be unreadable for the server user (e.g. /root).
        cmd.current_dir(&self.root)
            .env("HOME", &self.root)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for var in PG_ENV.split(' ') {
            cmd.env_remove(var);
        }
        if let Some(user) = &self.run_as {
            // std also drops root's supplementary groups when uid is set.
            cmd.uid(user.uid.as_raw()).gid(user.gid.as_raw());
        }
        cmd
    }

    async fn is_running(&self) -> Result<bool, EmbeddedError> {
        let out = run(self.command("pg_ctl", &self.data_dir).arg("status")).await?;
        match out.status.code() {
            Some(0) => Ok(!self.clear_zombie_postmaster().await?),
            // 3: not running (stale postmaster.pid included), 4: no data dir.
            Some(3) | Some(4) => Ok(false),
            _ => Err(EmbeddedError::PgCtl("status", failure(&out))),
        }
    }

    /// A postmaster that died after being reparented to an init that never
    /// reaps (common in containers) lingers as a zombie, which pg_ctl and
    /// postgres both take for a live server. A zombie holds nothing, so once
    /// its backends (cwd = PGDATA) have exited, its lock files are stale.
    async fn clear_zombie_postmaster(&self) -> Result<bool, EmbeddedError> {
        let pid_file = self.data_dir.join("postmaster.pid");
        let pid = fs::read_to_string(&pid_file)
            .ok()
            .and_then(|t| t.lines().next()?.trim().parse::<u32>().ok());
        if !pid.is_some_and(is_zombie) {
            return Ok(false);
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        while let Some(backend) = live_process_in(&self.data_dir) {
            if Instant::now() >= deadline {
                return Err(EmbeddedError::Permission(format!(
                    "the private PostgreSQL server died but its process {backend} still runs in {}; stop it and retry",
                    self.data_dir.display()
                )));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        tracing::warn!(pid_file = %pid_file.display(), "removing lock files of a dead (zombie) postmaster");
        let socket_lock = self.socket_dir.join(format!(".s.PGSQL.{PORT}.lock"));
        for lock in [pid_file, socket_lock] {
            match fs::remove_file(&lock) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(io_err(&lock)(e)),
                _ => {}
            }
        }
        Ok(true)
    }

    /// initdb into a scratch dir and rename it into place, so an interrupted
    /// first run can never leave a half-initialized `data` that looks valid.
    async fn initdb(&self) -> Result<(), EmbeddedError> {
        let scratch = self.root.join("data.initdb-tmp");
        if scratch.exists() {
            fs::remove_dir_all(&scratch).map_err(io_err(&scratch))?;
        }
        let out = run(self
            .command("initdb", &scratch)
            .args(INITDB_ARGS.split(' ')))
        .await?;
        if !out.status.success() {
            return Err(EmbeddedError::InitdbFailed(failure(&out)));
        }
        fs::rename(&scratch, &self.data_dir).map_err(io_err(&self.data_dir))?;
        File::open(&self.root)
            .and_then(|d| d.sync_all())
            .map_err(io_err(&self.root))?;
        tracing::info!(data = %self.data_dir.display(), "initialized private PostgreSQL cluster");
        Ok(())
    }

    async fn pg_ctl_start(&self) -> Result<(), EmbeddedError> {
        let socket_dir = self.socket_dir.to_str().expect("checked UTF-8 in start");
        // pg_ctl hands -o to /bin/sh; the GUC itself is a list that takes "quoted" entries.
        let socket_guc = format!(
            "unix_socket_directories=\"{}\"",
            socket_dir.replace('"', "\"\"")
        );
        let options = format!(
            "-p {PORT} -c listen_addresses='' -c {} -c unix_socket_permissions=0700 -c max_connections=200 -c shared_buffers=128MB",
            shell_quote(&socket_guc)
        );
        let log_offset = fs::metadata(&self.log_file).map_or(0, |m| m.len());
        let mut cmd = self.command("pg_ctl", &self.data_dir);
        cmd.arg("-l").arg(&self.log_file);
        cmd.args(["-w", "-t", "60", "-o", &options, "start"]);
        // Keep a Ctrl-C aimed at us away from a postmaster other processes may share.
        cmd.process_group(0);
        let out = run(&mut cmd).await?;
        if !out.status.success() {
            let log = log_tail(&self.log_file, log_offset);
            let log_file = self.log_file.display();
            return Err(EmbeddedError::StartFailed(format!(
                "{}; {log_file}: {log}",
                failure(&out)
            )));
        }
        tracing::info!(socket_dir = %self.socket_dir.display(), "started private PostgreSQL");
        Ok(())
    }

    async fn ensure_database(&self, name: &str) -> Result<(), EmbeddedError> {
        let server = self.connect_config("postgres");
        match crate::store::ensure_database(&server, name, Duration::from_secs(30)).await {
            Ok(true) => tracing::info!(database = name, "created database in private PostgreSQL"),
            Ok(false) => {}
            Err(e) => return Err(self.db_error(e.action, &e.error)),
        }
        Ok(())
    }

    fn db_error(&self, action: &str, e: &tokio_postgres::Error) -> EmbeddedError {
        let socket_dir = self.socket_dir.display();
        EmbeddedError::Database(format!(
            "could not {action} via {socket_dir}: {}",
            pg_error_text(e)
        ))
    }
}
