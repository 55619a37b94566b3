//! `box login` / `box logout`: per-user registry credentials.
//!
//! login checks the credentials against the registry (GET /v2/ with the auth flow) before
//! storing them in box's auth.json (0600, atomic); logout removes them.
use std::io::{BufRead, IsTerminal, Read, Write};
use std::path::{Path, PathBuf};

use anyhow::{Result, bail};

use crate::cli::Ctx;
use crate::cli::args::{LoginArgs, LogoutArgs};
use crate::registry::auth::{self, Credentials};
use crate::registry::{Client, ClientConfig, DOCKER_HUB};

pub fn login(ctx: &Ctx, args: LoginArgs) -> Result<u8> {
    let registry = auth::normalise_registry_arg(args.registry.as_deref().unwrap_or(DOCKER_HUB))?;
    let auth_file = args
        .authfile
        .clone()
        .unwrap_or_else(|| ctx.paths.auth_file());
    if args.password.is_some() && args.password_stdin {
        bail!("--password and --password-stdin conflict: use only --password-stdin");
    }
    let tty = std::io::stdin().is_terminal();
    let stored = auth::lookup(std::slice::from_ref(&auth_file), &registry, None)
        .ok()
        .flatten();

    let username = match args.username {
        Some(u) => u,
        None if tty && !args.password_stdin => {
            let default = stored.as_ref().map(|c| c.username.clone());
            let shown = default
                .as_deref()
                .map(|u| format!(" ({u})"))
                .unwrap_or_default();
            let typed = prompt(&format!("Username{shown}: "))?;
            match (typed.is_empty(), default) {
                (true, Some(d)) => d,
                _ => typed,
            }
        }
        None => bail!("no username for {registry}: pass --username NAME"),
    };
    if username.is_empty() {
        bail!("the username is empty: pass --username NAME");
    }
    let password = if args.password_stdin {
        let mut s = String::new();
        std::io::stdin()
            .read_to_string(&mut s)
            .map_err(|e| anyhow::anyhow!("cannot read the password from stdin: {e}"))?;
        s.trim_end_matches(['\n', '\r']).to_string()
    } else if let Some(p) = args.password {
        eprintln!("WARNING! Using --password via the CLI is insecure. Use --password-stdin.");
        p
    } else if tty {
        prompt_hidden("Password: ")?
    } else {
        bail!("no password for {registry}: pipe it to --password-stdin");
    };
    if password.is_empty() {
        bail!("the password is empty: give the password of {username} on {registry}");
    }

    let creds = Credentials { username, password };
    let client = client(ctx, &auth_file, args.tls_verify);
    client.check_login(&registry, &creds)?;
    auth::store(&auth_file, &registry, &creds)?;
    println!("Login Succeeded");
    Ok(0)
}

pub fn logout(ctx: &Ctx, args: LogoutArgs) -> Result<u8> {
    let auth_file = args
        .authfile
        .clone()
        .unwrap_or_else(|| ctx.paths.auth_file());
    if args.all {
        if args.registry.is_some() {
            bail!("give a registry or --all, not both");
        }
        auth::remove_all(&auth_file)?;
        println!("Removed login credentials for all registries");
        return Ok(0);
    }
    let registry = auth::normalise_registry_arg(args.registry.as_deref().unwrap_or(DOCKER_HUB))?;
    if auth::remove(&auth_file, &registry)? {
        println!("Removed login credentials for {registry}");
        return Ok(0);
    }
    // credentials box only reads (docker's, podman's) are not box's to remove
    let others = ClientConfig::standard(&ctx.paths, None).auth_files;
    for file in others.iter().filter(|f| **f != auth_file) {
        if let Ok(Some(_)) = auth::lookup(std::slice::from_ref(file), &registry, None) {
            bail!(
                "not logged in to {registry} with box: the credentials in use come from {}; remove them with the tool that wrote them",
                file.display()
            );
        }
    }
    bail!("not logged in to {registry}")
}

fn client(ctx: &Ctx, auth_file: &Path, tls_verify: Option<bool>) -> Client {
    let mut config = ClientConfig::standard(&ctx.paths, tls_verify);
    config.auth_files[0] = PathBuf::from(auth_file);
    Client::new(config)
}

fn prompt(text: &str) -> Result<String> {
    let mut err = std::io::stderr();
    let _ = err.write_all(text.as_bytes());
    let _ = err.flush();
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line)?;
    Ok(line.trim_end_matches(['\n', '\r']).trim().to_string())
}

/// Read a line from the terminal with echo off (restored even on error).
fn prompt_hidden(text: &str) -> Result<String> {
    use nix::sys::termios::{LocalFlags, SetArg, tcgetattr, tcsetattr};
    let stdin = std::io::stdin();
    let saved = tcgetattr(&stdin)?;
    let mut quiet = saved.clone();
    quiet.local_flags.remove(LocalFlags::ECHO);
    quiet.local_flags.insert(LocalFlags::ECHONL);
    let mut err = std::io::stderr();
    let _ = err.write_all(text.as_bytes());
    let _ = err.flush();
    tcsetattr(&stdin, SetArg::TCSAFLUSH, &quiet)?;
    let mut line = String::new();
    let read = stdin.lock().read_line(&mut line);
    let _ = tcsetattr(&stdin, SetArg::TCSAFLUSH, &saved);
    read?;
    Ok(line.trim_end_matches(['\n', '\r']).to_string())
}
