use super::*;
use crate::build::parse::parse;

fn host() -> Platform {
    Platform {
        os: "linux".into(),
        arch: "arm".into(),
        variant: "v7".into(),
    }
}

fn plan_of(text: &str, args: &[(&str, &str)], target: Option<&str>) -> Result<Plan, String> {
    let f = parse(text, "Containerfile").unwrap();
    let args = args
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    plan(&f, &args, target, &host()).map_err(|e| e.to_string())
}

const MULTI: &str = "\
ARG GO=1.22
ARG BASE
FROM --platform=$BUILDPLATFORM golang:${GO} AS Build
RUN go build
FROM build AS test
RUN go test
FROM alpine:3.20 AS tools
FROM ${BASE:-debian} AS final
ARG GO
ENV SRC=build
COPY --from=$SRC /out /bin/
COPY --from=2 /t /t
COPY --from=docker.io/library/busybox /bin/sh /sh
FROM final AS unused
";

#[test]
fn stages_bases_and_copy_sources() {
    let p = plan_of(MULTI, &[("BASE", "ubuntu")], None).unwrap();
    let names: Vec<_> = p
        .stages
        .iter()
        .map(|s| s.name.as_deref().unwrap())
        .collect();
    assert_eq!(names, ["build", "test", "tools", "final", "unused"]);
    assert_eq!(p.stages[0].base, Base::Image("golang:1.22".into()));
    assert_eq!(p.stages[0].platform.as_deref(), Some("linux/arm/v7"));
    assert_eq!(p.stages[1].base, Base::Stage(0));
    assert_eq!(p.stages[3].base, Base::Image("ubuntu".into()));
    assert_eq!(p.stages[4].base, Base::Stage(3));
    assert_eq!(
        p.stages[3].copies_from,
        [
            (11, CopyFrom::Stage(0)),
            (12, CopyFrom::Stage(2)),
            (13, CopyFrom::Image("docker.io/library/busybox".into())),
        ]
    );
    assert_eq!(p.stages[3].instructions.len(), 5);
    assert_eq!((p.target, p.needed.clone()), (4, vec![0, 2, 3, 4]));
    assert!(p.global_args.contains(&("GO".into(), "1.22".into())));
    assert!(p.global_args.contains(&("TARGETARCH".into(), "arm".into())));
}

#[test]
fn target_selects_needed_stages() {
    let p = plan_of(MULTI, &[("GO", "1.23")], Some("TEST")).unwrap();
    assert_eq!((p.target, p.needed.clone()), (1, vec![0, 1]));
    assert_eq!(p.stages[0].base, Base::Image("golang:1.23".into()));
    assert_eq!(p.stages[3].base, Base::Image("debian".into()));
    let p = plan_of(MULTI, &[], Some("final")).unwrap();
    assert_eq!(p.needed, [0, 2, 3]);
    assert_eq!(
        plan_of(MULTI, &[], Some("prod")).unwrap_err(),
        "target stage \"prod\" could not be found in Containerfile: use one of the stage names (build, test, tools, final, unused)"
    );
}

#[test]
fn refused_references() {
    for (text, want) in [
        (
            "FROM a AS x\nFROM b AS X\n",
            "Containerfile:2: duplicate stage name \"x\" (also at line 1): rename one of them",
        ),
        (
            "FROM x AS x\n",
            "Containerfile:1: stage \"x\" refers to itself: a stage can only use earlier stages",
        ),
        (
            "FROM later AS a\nFROM alpine AS later\n",
            "Containerfile:1: stage \"later\" is defined later in the file: move it above the stage that uses it",
        ),
        (
            "FROM a AS one\nCOPY --from=two /a /b\nFROM b AS two\n",
            "Containerfile:2: stage \"two\" is defined later in the file",
        ),
        (
            "FROM a AS one\nCOPY --from=one /a /b\n",
            "Containerfile:2: stage \"one\" refers to itself",
        ),
        (
            "FROM a\nCOPY --from=1 /a /b\nFROM b\n",
            "Containerfile:2: stage index 1 is not an earlier stage: use 0 to 0",
        ),
        (
            "RUN x\nFROM a\n",
            "Containerfile:1: no build stage in current context",
        ),
        ("ARG A\n", "Containerfile:1: no FROM instruction"),
        (
            "ARG IMG\nFROM $IMG\n",
            "Containerfile:2: base name should not be blank",
        ),
    ] {
        let got = plan_of(text, &[], None).unwrap_err();
        assert!(got.starts_with(want), "{text:?}: {got}");
    }
}

#[test]
fn stage_args_inherit_globals_and_build_args_win() {
    let text = "ARG V=1\nFROM a\nARG V\nCOPY --from=img:$V /a /b\nFROM b\nARG V=2\nCOPY --from=img:$V /a /b\nFROM c\nCOPY --from=img:${V:-none} /a /b\n";
    let from = |p: &Plan, s: usize| p.stages[s].copies_from[0].1.clone();
    let p = plan_of(text, &[], None).unwrap();
    assert_eq!(from(&p, 0), CopyFrom::Image("img:1".into()));
    assert_eq!(from(&p, 1), CopyFrom::Image("img:2".into()));
    // Globals are not visible in a stage without an ARG line.
    assert_eq!(from(&p, 2), CopyFrom::Image("img:none".into()));
    let p = plan_of(text, &[("V", "9")], None).unwrap();
    assert_eq!(from(&p, 0), CopyFrom::Image("img:9".into()));
    assert_eq!(from(&p, 1), CopyFrom::Image("img:9".into()));
}

#[test]
fn predefined_args() {
    let h = Platform {
        os: "linux".into(),
        arch: "amd64".into(),
        variant: String::new(),
    };
    let a = platform_args(&h);
    assert!(a.contains(&("TARGETPLATFORM".into(), "linux/amd64".into())));
    assert!(a.contains(&("BUILDOS".into(), "linux".into())));
    assert!(a.contains(&("TARGETVARIANT".into(), String::new())));
    assert_eq!(host().to_string(), "linux/arm/v7");
    assert!(is_predefined_arg("HTTP_PROXY") && is_predefined_arg("no_proxy"));
    assert!(is_predefined_arg("BUILDARCH") && !is_predefined_arg("GOPATH"));
    let h = Platform::host();
    assert_eq!(h.os, "linux");
    assert!(!h.arch.is_empty() && h.arch != "x86_64" && h.arch != "aarch64");
    // FROM sees the platform ARGs without declaring them.
    let p = plan_of("FROM img-$TARGETARCH:$BUILDOS\n", &[], None).unwrap();
    assert_eq!(p.stages[0].base, Base::Image("img-arm:linux".into()));
    assert_eq!(
        plan_of("FROM scratch\n", &[], None).unwrap().stages[0].base,
        Base::Scratch
    );
}
