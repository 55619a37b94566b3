//! `box cp` into a created, never-started container honours its volumes and bind mounts
//! (issue 17, bug 2): the file lands where the container will see it, and it still starts.
use crate::harness::lab::Lab;

#[test]
fn cp_into_a_created_container_lands_in_its_volumes_and_binds() {
    let env = require_env!(alpine);
    let lab = Lab::new(env);
    let host_dir = lab.tb.mkdir("bound");
    let bind = format!("{}:/h", host_dir.to_str().unwrap());
    lab.run(&[
        "create",
        "--name",
        "cpv",
        "--network",
        "none",
        "-v",
        "cpvol:/data",
        "-v",
        &bind,
        &lab.image,
        "sh",
        "-c",
        "cat /data/f /h/g",
    ])
    .assert_success();
    let f = lab.tb.write("f", "into the volume\n");
    let g = lab.tb.write("g", "into the bind\n");
    lab.run(&["cp", f.to_str().unwrap(), "cpv:/data/f"])
        .assert_success();
    lab.run(&["cp", g.to_str().unwrap(), "cpv:/h/g"])
        .assert_success();
    assert_eq!(
        std::fs::read_to_string(host_dir.join("g")).unwrap(),
        "into the bind\n"
    );
    lab.run(&["start", "-a", "cpv"])
        .assert_success()
        .stdout_is("into the volume\ninto the bind\n");
    // The volume holds it for other containers too.
    lab.run(&[
        "run",
        "--rm",
        "--network",
        "none",
        "-v",
        "cpvol:/v",
        &lab.image,
        "cat",
        "/v/f",
    ])
    .assert_success()
    .stdout_is("into the volume\n");
}
