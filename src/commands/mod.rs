//! One file per command family; each function returns the exit code to use.
use anyhow::Result;

use crate::cli::Ctx;
use crate::cli::args::{
    Command, ContainerCommand, GenerateCommand, ImageCommand, SystemCommand, VolumeCommand,
};

pub mod archive;
pub mod completion;
pub mod container_spec;
pub mod generate;
pub mod image;
pub mod info;
pub mod inspect;
pub mod internal;
pub mod lifecycle;
pub mod login;
pub mod pull;
pub mod push;
pub mod run;
pub mod system;
pub mod volume;

pub fn dispatch(ctx: &Ctx, command: Command) -> Result<u8> {
    match command {
        Command::Pull(a) => pull::pull(ctx, a),
        Command::Push(a) => push::push(ctx, a),
        Command::Run(a) => run::run(ctx, a),
        Command::Create(a) => run::create(ctx, a),
        Command::Start(a) => lifecycle::start(ctx, a),
        Command::Restart(a) => lifecycle::restart(ctx, a),
        Command::Ps(a) => lifecycle::ps(ctx, a),
        Command::Logs(a) => lifecycle::logs(ctx, a),
        Command::Exec(a) => lifecycle::exec(ctx, a),
        Command::Stop(a) => lifecycle::stop(ctx, a),
        Command::Kill(a) => lifecycle::kill(ctx, a),
        Command::Rm(a) => lifecycle::rm(ctx, a),
        Command::Wait(a) => lifecycle::wait(ctx, a),
        Command::Pause(a) => lifecycle::pause(ctx, a),
        Command::Unpause(a) => lifecycle::unpause(ctx, a),
        Command::Rename(a) => lifecycle::rename(ctx, a),
        Command::Top(a) => lifecycle::top(ctx, a),
        Command::Cp(a) => lifecycle::cp(ctx, a),
        Command::Port(a) => lifecycle::port(ctx, a),
        Command::Stats(a) => lifecycle::stats(ctx, a),
        Command::Images(a) => image::images(ctx, a),
        Command::Rmi(a) => image::rmi(ctx, a),
        Command::Tag(a) => image::tag(ctx, a),
        Command::Inspect(a) => inspect::inspect(ctx, a),
        Command::Login(a) => login::login(ctx, a),
        Command::Logout(a) => login::logout(ctx, a),
        Command::Import(a) => archive::import(ctx, a),
        Command::Load(a) => archive::load(ctx, a),
        Command::Save(a) => archive::save(ctx, a),
        Command::Image(c) => match c {
            ImageCommand::List(a) => image::images(ctx, a),
            ImageCommand::Pull(a) => pull::pull(ctx, a),
            ImageCommand::Push(a) => push::push(ctx, a),
            ImageCommand::Remove(a) => image::rmi(ctx, a),
            ImageCommand::Prune(a) => image::prune(ctx, a),
            ImageCommand::Inspect(mut a) => {
                a.kind = Some(crate::cli::args::InspectType::Image);
                inspect::inspect(ctx, a)
            }
            ImageCommand::Tag(a) => image::tag(ctx, a),
        },
        Command::Container(c) => match c {
            ContainerCommand::List(a) => lifecycle::ps(ctx, a),
            ContainerCommand::Prune(a) => lifecycle::prune(ctx, a),
            ContainerCommand::Inspect(mut a) => {
                a.kind = Some(crate::cli::args::InspectType::Container);
                inspect::inspect(ctx, a)
            }
        },
        Command::Volume(c) => match c {
            VolumeCommand::Create(a) => volume::create(ctx, a),
            VolumeCommand::Ls(a) => volume::ls(ctx, a),
            VolumeCommand::Rm(a) => volume::rm(ctx, a),
            VolumeCommand::Inspect(a) => volume::inspect(ctx, a),
            VolumeCommand::Prune(a) => volume::prune(ctx, a),
        },
        Command::System(c) => match c {
            SystemCommand::Prune(a) => system::prune(ctx, a),
            SystemCommand::Df => system::df(ctx),
            SystemCommand::Check(a) => system::check(ctx, a),
            SystemCommand::Info(a) => info::info(ctx, a),
        },
        Command::Info(a) => info::info(ctx, a),
        Command::Generate(c) => match c {
            GenerateCommand::Systemd(a) => generate::systemd(ctx, a),
            GenerateCommand::Kube(a) => generate::kube(ctx, a),
        },
        Command::Completion(a) => completion::completion(a),
        Command::Internal(c) => internal::internal(ctx, c),
    }
}
