//! `ecoupon operator …`: operator accounts.

use std::path::PathBuf;

use clap::Subcommand;

use super::{operator_name, with_store};
use crate::config::Settings;

#[derive(Debug, Subcommand)]
pub enum OperatorCommand {
    /// Create a pending operator with a generated password (shown once). A different
    /// active operator must approve it.
    Request {
        #[arg(value_name = "EMAIL")]
        email: String,
        /// Create the very first operator, active at once (only while there is none).
        #[arg(long)]
        bootstrap: bool,
        #[arg(long, value_name = "DIR")]
        data_dir: Option<PathBuf>,
    },
    /// Approve a pending operator. The approver's password is read from standard input.
    Approve {
        #[arg(value_name = "EMAIL")]
        email: String,
        /// The approving operator (must be active and someone else).
        #[arg(long, value_name = "EMAIL")]
        by: String,
        #[arg(long, value_name = "DIR")]
        data_dir: Option<PathBuf>,
    },
    /// Disable an operator at once. The acting operator's password is read from standard
    /// input.
    Disable {
        #[arg(value_name = "EMAIL")]
        email: String,
        #[arg(long, value_name = "EMAIL")]
        by: String,
        #[arg(long, value_name = "DIR")]
        data_dir: Option<PathBuf>,
    },
    /// Remove an operator's second factor (lost phone) and end their sessions; they can
    /// enrol again after signing in with the password. The acting operator (someone else)
    /// gives their password on standard input.
    #[command(name = "reset-2fa")]
    ResetTwoFactor {
        #[arg(value_name = "EMAIL")]
        email: String,
        #[arg(long, value_name = "EMAIL")]
        by: String,
        #[arg(long, value_name = "DIR")]
        data_dir: Option<PathBuf>,
    },
    /// Every operator and their state.
    List {
        #[arg(long, value_name = "DIR")]
        data_dir: Option<PathBuf>,
    },
}

/// One line from standard input (prompted on a terminal), without echoing on a terminal
/// being out of scope: pipe it in from a password manager.
fn read_password(for_whom: &str) -> anyhow::Result<String> {
    use std::io::{BufRead, IsTerminal, Write};
    if std::io::stdin().is_terminal() {
        eprint!("password for {for_whom}: ");
        std::io::stderr().flush()?;
    }
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line)?;
    let password = line.trim_end_matches(['\r', '\n']).to_string();
    if password.is_empty() {
        anyhow::bail!("--by: no password given on standard input for {for_whom}");
    }
    Ok(password)
}

pub async fn operator(settings: Settings, command: OperatorCommand) -> anyhow::Result<()> {
    let mut settings = settings;
    match command {
        OperatorCommand::Request {
            email,
            bootstrap,
            data_dir,
        } => {
            settings.data_dir = data_dir.unwrap_or(settings.data_dir);
            let requested_by = if bootstrap {
                "bootstrap".to_string()
            } else {
                operator_name(None)
            };
            with_store(&settings, |store| async move {
                crate::store::run_migrations(&store).await?;
                let r = crate::ops::operators::request(&store, &email, &requested_by, bootstrap)
                    .await?;
                println!("operator: {}", r.email);
                println!(
                    "status: {}",
                    if r.active {
                        "active"
                    } else {
                        "pending (a different active operator must approve)"
                    }
                );
                println!("password: {}", r.password.expose());
                Ok(())
            })
            .await
        }
        OperatorCommand::Approve {
            email,
            by,
            data_dir,
        } => {
            settings.data_dir = data_dir.unwrap_or(settings.data_dir);
            let password = read_password(&by)?;
            with_store(&settings, |store| async move {
                crate::ops::operators::approve(&store, &email, &by, &password).await?;
                println!("approved: {email} (by {by})");
                Ok(())
            })
            .await
        }
        OperatorCommand::Disable {
            email,
            by,
            data_dir,
        } => {
            settings.data_dir = data_dir.unwrap_or(settings.data_dir);
            let password = read_password(&by)?;
            with_store(&settings, |store| async move {
                crate::ops::operators::disable(&store, &email, &by, &password).await?;
                println!("disabled: {email}");
                Ok(())
            })
            .await
        }
        OperatorCommand::ResetTwoFactor {
            email,
            by,
            data_dir,
        } => {
            settings.data_dir = data_dir.unwrap_or(settings.data_dir);
            let password = read_password(&by)?;
            with_store(&settings, |store| async move {
                crate::ops::operators::reset_two_factor(&store, &email, &by, &password).await?;
                println!("second factor removed: {email} (sessions ended)");
                Ok(())
            })
            .await
        }
        OperatorCommand::List { data_dir } => {
            settings.data_dir = data_dir.unwrap_or(settings.data_dir);
            with_store(&settings, |store| async move {
                for op in store.operators().await? {
                    println!(
                        "{:<32} {:<9} {:<7} approved by {}  since {}",
                        op.email,
                        op.status,
                        if op.totp_enabled { "2fa" } else { "no-2fa" },
                        op.approved_by.as_deref().unwrap_or("-"),
                        op.created_at.to_rfc3339()
                    );
                }
                Ok(())
            })
            .await
        }
    }
}
