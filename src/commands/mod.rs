//! One file per command family; each function returns the exit code to use.
use anyhow::Result;

use crate::cli::Ctx;
use crate::cli::args::{
    Command, ContainerCommand, GenerateCommand, ImageCommand, SystemCommand, VolumeCommand,
};
use crate::container::{Containers, Record};

pub mod archive;
mod attach;
pub mod auto_update;
pub mod build;
pub mod commit;
pub mod completion;
pub mod container_spec;
pub mod cp;
pub mod diff;
pub mod events;
pub mod exec;
pub mod exists;
pub mod generate;
pub mod healthcheck;
pub mod history;
pub mod image;
pub mod info;
pub mod inspect;
pub mod internal;
pub mod kube;
pub mod login;
pub mod logs;
pub mod network;
pub mod pause;
pub mod pod;
pub mod port;
pub mod ps;
pub mod pull;
pub mod push;
pub mod quadlet;
pub mod rename;
pub mod rm;
pub mod run;
pub mod start;
pub mod stats;
pub mod stop;
pub mod system;
pub mod table;
pub mod top;
pub mod unshare;
pub mod version;
pub mod volume;

pub fn dispatch(ctx: &Ctx, command: Command) -> Result<u8> {
    match command {
        Command::Pull(a) => pull::pull(ctx, a),
        Command::Push(a) => push::push(ctx, a),
        Command::Run(a) => run::run(ctx, a),
        Command::Create(a) => run::create(ctx, a),
        Command::Start(a) => start::start(ctx, a),
        Command::Restart(a) => stop::restart(ctx, a),
        Command::Ps(a) => ps::ps(ctx, a),
        Command::Logs(a) => logs::logs(ctx, a),
        Command::Exec(a) => exec::exec(ctx, a),
        Command::Stop(a) => stop::stop(ctx, a),
        Command::Kill(a) => stop::kill(ctx, a),
        Command::Attach(a) => attach::attach(ctx, a),
        Command::Rm(a) => rm::rm(ctx, a),
        Command::Wait(a) => stop::wait(ctx, a),
        Command::Pause(a) => pause::pause(ctx, a),
        Command::Unpause(a) => pause::unpause(ctx, a),
        Command::Rename(a) => rename::rename(ctx, a),
        Command::Top(a) => top::top(ctx, a),
        Command::Cp(a) => cp::cp(ctx, a),
        Command::Port(a) => port::port(ctx, a),
        Command::Stats(a) => stats::stats(ctx, a),
        Command::Images(a) => image::images(ctx, a),
        Command::Rmi(a) => image::rmi(ctx, a),
        Command::Tag(a) => image::tag(ctx, a),
        Command::Inspect(a) => inspect::inspect(ctx, a),
        Command::Login(a) => login::login(ctx, a),
        Command::Logout(a) => login::logout(ctx, a),
        Command::Import(a) => archive::import(ctx, a),
        Command::Load(a) => archive::load(ctx, a),
        Command::Save(a) => archive::save(ctx, a),
        Command::Commit(a) => commit::commit(ctx, a),
        Command::Build(a) => build::build(ctx, a),
        Command::Diff(a) => diff::diff(ctx, a, diff::Scope::Any),
        Command::History(a) => history::history(ctx, a),
        Command::Export(a) => commit::export(ctx, a),
        Command::Untag(a) => image::untag(ctx, a),
        Command::Version(a) => version::version(a),
        // The groups' commands that are also top-level ones go through the top-level arm.
        Command::Image(c) => match c {
            ImageCommand::List(a) => dispatch(ctx, Command::Images(a)),
            ImageCommand::Pull(a) => dispatch(ctx, Command::Pull(a)),
            ImageCommand::Build(a) => dispatch(ctx, Command::Build(a)),
            ImageCommand::Push(a) => dispatch(ctx, Command::Push(a)),
            ImageCommand::Remove(a) => dispatch(ctx, Command::Rmi(a)),
            ImageCommand::Prune(a) => image::prune(ctx, a),
            ImageCommand::Inspect(mut a) => {
                a.kind = Some(crate::cli::args::InspectType::Image);
                dispatch(ctx, Command::Inspect(a))
            }
            ImageCommand::Diff(a) => dispatch(ctx, Command::Diff(a)),
            ImageCommand::History(a) => dispatch(ctx, Command::History(a)),
            ImageCommand::Tag(a) => dispatch(ctx, Command::Tag(a)),
            ImageCommand::Untag(a) => dispatch(ctx, Command::Untag(a)),
            ImageCommand::Exists(a) => exists::image(ctx, a),
            ImageCommand::Save(a) => dispatch(ctx, Command::Save(a)),
            ImageCommand::Load(a) => dispatch(ctx, Command::Load(a)),
            ImageCommand::Import(a) => dispatch(ctx, Command::Import(a)),
        },
        Command::Container(c) => match c {
            ContainerCommand::List(a) => dispatch(ctx, Command::Ps(a)),
            ContainerCommand::Prune(a) => rm::prune(ctx, a),
            ContainerCommand::Inspect(mut a) => {
                a.kind = Some(crate::cli::args::InspectType::Container);
                dispatch(ctx, Command::Inspect(a))
            }
            ContainerCommand::Commit(a) => dispatch(ctx, Command::Commit(a)),
            ContainerCommand::Diff(a) => dispatch(ctx, Command::Diff(a)),
            ContainerCommand::Export(a) => dispatch(ctx, Command::Export(a)),
            ContainerCommand::Exists(a) => exists::container(ctx, a),
            ContainerCommand::Run(a) => dispatch(ctx, Command::Run(a)),
            ContainerCommand::Create(a) => dispatch(ctx, Command::Create(a)),
            ContainerCommand::Start(a) => dispatch(ctx, Command::Start(a)),
            ContainerCommand::Stop(a) => dispatch(ctx, Command::Stop(a)),
            ContainerCommand::Restart(a) => dispatch(ctx, Command::Restart(a)),
            ContainerCommand::Rm(a) => dispatch(ctx, Command::Rm(a)),
            ContainerCommand::Logs(a) => dispatch(ctx, Command::Logs(a)),
            ContainerCommand::Exec(a) => dispatch(ctx, Command::Exec(a)),
            ContainerCommand::Cp(a) => dispatch(ctx, Command::Cp(a)),
            ContainerCommand::Kill(a) => dispatch(ctx, Command::Kill(a)),
            ContainerCommand::Attach(a) => dispatch(ctx, Command::Attach(a)),
            ContainerCommand::Wait(a) => dispatch(ctx, Command::Wait(a)),
            ContainerCommand::Pause(a) => dispatch(ctx, Command::Pause(a)),
            ContainerCommand::Unpause(a) => dispatch(ctx, Command::Unpause(a)),
            ContainerCommand::Rename(a) => dispatch(ctx, Command::Rename(a)),
            ContainerCommand::Top(a) => dispatch(ctx, Command::Top(a)),
            ContainerCommand::Port(a) => dispatch(ctx, Command::Port(a)),
            ContainerCommand::Stats(a) => dispatch(ctx, Command::Stats(a)),
        },
        Command::Volume(c) => match c {
            VolumeCommand::Create(a) => volume::create(ctx, a),
            VolumeCommand::Ls(a) => volume::ls(ctx, a),
            VolumeCommand::Rm(a) => volume::rm(ctx, a),
            VolumeCommand::Inspect(a) => volume::inspect(ctx, a),
            VolumeCommand::Prune(a) => volume::prune(ctx, a),
            VolumeCommand::Exists(a) => exists::volume(ctx, a),
            VolumeCommand::Export(a) => volume::export(ctx, a),
            VolumeCommand::Import(a) => volume::import(ctx, a),
        },
        Command::System(c) => match c {
            SystemCommand::Prune(a) => system::prune(ctx, a),
            SystemCommand::Df => system::df(ctx),
            SystemCommand::Check(a) => system::check(ctx, a),
            SystemCommand::Info(a) => info::info(ctx, a),
            SystemCommand::Reset(a) => system::reset(ctx, a),
            SystemCommand::Migrate => {
                println!("nothing to migrate: box's container records need no conversion");
                Ok(0)
            }
        },
        Command::Pod(c) => pod::pod(ctx, c),
        Command::Network(c) => network::network(ctx, c),
        Command::Kube(c) => kube::kube(ctx, c),
        Command::Play(crate::cli::args_kube::PlayCommand::Kube(a)) => kube::play(ctx, a),
        Command::Info(a) => info::info(ctx, a),
        Command::Generate(c) => match c {
            GenerateCommand::Systemd(a) => generate::systemd(ctx, a),
            GenerateCommand::Kube(a) => generate::kube(ctx, a),
        },
        Command::Completion(a) => completion::completion(a),
        Command::Events(a) => events::events(ctx, a),
        Command::Healthcheck(c) => healthcheck::healthcheck(ctx, c),
        Command::Quadlet(a) => quadlet::quadlet(ctx, a),
        Command::AutoUpdate(a) => auto_update::auto_update(ctx, a),
        Command::Unshare(a) => unshare::unshare(ctx, a),
        Command::Mount(a) => unshare::mount(ctx, a),
        Command::Unmount(a) => unshare::unmount(ctx, a),
        Command::Internal(c) => internal::internal(ctx, c),
    }
}

/// The container records, the data directories created on first use.
fn containers(ctx: &Ctx) -> Result<Containers> {
    ctx.paths.ensure()?;
    Ok(Containers::open(&ctx.paths)?)
}

/// Run `f` on each named container, printing errors as docker does (one line each) and
/// failing with 125 at the end if any failed.
fn each(
    ctx: &Ctx,
    names: &[String],
    mut f: impl FnMut(&Containers, &Record, &str) -> Result<()>,
) -> Result<u8> {
    let c = containers(ctx)?;
    each_name(names, |name| {
        let rec = c.find(name)?;
        f(&c, &rec, name)
    })
}

/// Run `f` on each name, as docker does for `rm a b c`: every failure said as one line,
/// the one that decides the exit status last (see `report`).
fn each_name(names: &[String], mut f: impl FnMut(&String) -> Result<()>) -> Result<u8> {
    report(names.iter().filter_map(|n| f(n).err()).collect())
}

/// The outcome of a command over several names that failed for `failed` (in order): the
/// error whose status the command exits with (the rm family's 1 and 2 only when nothing
/// worse happened) is said last, by `main`; the others now.
fn report(mut failed: Vec<anyhow::Error>) -> Result<u8> {
    let rank = |e: &anyhow::Error| match crate::exit::code_of(e) {
        RM_MISSING => 0,
        RM_IN_USE => 1,
        _ => 2,
    };
    // (max_by_key keeps the last of equals: the latest failure of the worst kind)
    let Some(worst) = (0..failed.len()).max_by_key(|&i| rank(&failed[i])) else {
        return Ok(0);
    };
    let last = failed.remove(worst);
    for e in &failed {
        eprintln!("box: {}", crate::exit::one_line(e));
    }
    Err(last)
}

/// `--latest`: the most recently created of the containers `keep` takes.
fn latest(c: &Containers, keep: impl Fn(&Record) -> bool) -> Result<Option<Record>> {
    let mut all = c.list()?;
    all.retain(|r| keep(r));
    Ok(all
        .into_iter()
        .max_by(|a, b| a.config.created.cmp(&b.config.created)))
}

/// podman's exit status of the rm family (`rm`, `rmi`, `volume rm`, `pod rm`, `network
/// rm`) when one of the things named does not exist and nothing else failed.
pub const RM_MISSING: u8 = 1;
/// ... when one is running or in use (and nothing worse failed).
pub const RM_IN_USE: u8 = 2;

/// `e` as the rm family's [`RM_MISSING`] when it says the thing named does not exist.
pub(crate) fn missing_is_1(e: anyhow::Error) -> anyhow::Error {
    let missing = e.chain().any(|c| {
        matches!(
            c.downcast_ref::<crate::container::Error>(),
            Some(crate::container::Error::NotFound(_))
        ) || matches!(
            c.downcast_ref::<crate::volume::Error>(),
            Some(crate::volume::Error::NotFound(_))
        ) || matches!(
            c.downcast_ref::<crate::pod::Error>(),
            Some(crate::pod::Error::NotFound(_))
        ) || matches!(
            c.downcast_ref::<crate::usernet::Error>(),
            Some(crate::usernet::Error::NotFound(_))
        )
    });
    if missing {
        with_code(RM_MISSING, &e)
    } else {
        e
    }
}

/// `e`'s one-line message with exit status `code`.
pub(crate) fn with_code(code: u8, e: &anyhow::Error) -> anyhow::Error {
    anyhow::Error::new(crate::exit::Coded::new(code, crate::exit::one_line(e)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn coded(code: u8, m: &str) -> anyhow::Error {
        anyhow::Error::new(crate::exit::Coded::new(code, m))
    }

    #[test]
    fn the_worst_failure_decides_and_is_said_last() {
        assert_eq!(report(Vec::new()).unwrap(), 0);
        let e = report(vec![coded(1, "a"), coded(1, "b")]).unwrap_err();
        assert_eq!(e.to_string(), "b", "the latest of equals");
        let e = report(vec![coded(2, "busy"), coded(1, "gone")]).unwrap_err();
        assert_eq!(crate::exit::code_of(&e), 2);
        let e = report(vec![coded(125, "broken"), coded(2, "busy")]).unwrap_err();
        assert_eq!(crate::exit::code_of(&e), 125);
        let e = report(vec![anyhow::anyhow!("plain"), coded(1, "gone")]).unwrap_err();
        assert_eq!(e.to_string(), "plain");
    }
}
