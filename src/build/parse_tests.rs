//! Cases follow BuildKit's parser test data (`testfiles/*`, `parser_heredoc_test.go`,
//! `instructions/parse_test.go`).
use super::*;

fn p(text: &str) -> Containerfile {
    parse(text, "Containerfile").unwrap_or_else(|e| panic!("{e}"))
}

fn err(text: &str) -> String {
    parse(text, "Containerfile").unwrap_err().to_string()
}

fn kinds(text: &str) -> Vec<Kind> {
    p(text).instructions.into_iter().map(|i| i.kind).collect()
}

fn shell(s: &str) -> Command {
    Command::Shell(s.into())
}

fn exec(v: &[&str]) -> Command {
    Command::Exec(v.iter().map(|s| s.to_string()).collect())
}

fn kv(pairs: &[(&str, &str)]) -> Vec<KeyValue> {
    pairs
        .iter()
        .map(|(k, v)| KeyValue {
            key: k.to_string(),
            value: v.to_string(),
        })
        .collect()
}

fn run_cmd(k: &Kind) -> &Command {
    match k {
        Kind::Run(r) => &r.command,
        other => panic!("not RUN: {other:?}"),
    }
}

#[test]
fn directives_escape_and_syntax() {
    let f = p(
        "# syntax=docker/dockerfile:1\n# escape=`\nFROM scratch\nRUN a `\n  b\nCOPY c:\\x\\ d\\\n",
    );
    assert_eq!(f.syntax.as_deref(), Some("docker/dockerfile:1"));
    assert_eq!(f.escape, '`');
    assert_eq!(run_cmd(&f.instructions[1].kind), &shell("a   b"));
    assert_eq!(f.instructions[1].line, 4);
    assert_eq!(f.instructions[1].end_line, 5);
    // A backslash is an ordinary character with the backtick escape (Windows paths).
    match &f.instructions[2].kind {
        Kind::Copy(c) => {
            assert_eq!(c.sources, [Source::Path("c:\\x\\".into())]);
            assert_eq!(c.dest, "d\\");
        }
        k => panic!("{k:?}"),
    }
}

#[test]
fn directives_only_at_the_top() {
    // After a comment, a blank line or an instruction, `# escape=` is just a comment.
    for text in [
        "# a comment\n# escape=`\nFROM x\nRUN a \\\n b\n",
        "\n# escape=`\nFROM x\nRUN a \\\n b\n",
        "FROM x\n# escape=`\nRUN a \\\n b\n",
    ] {
        let f = p(text);
        assert_eq!(f.escape, '\\', "{text:?}");
        assert_eq!(run_cmd(&f.instructions[1].kind), &shell("a  b"));
    }
    assert_eq!(p("#ESCAPE = `\nFROM x\n").escape, '`');
    assert_eq!(
        err("# escape=\\\n# escape=`\nFROM x\n"),
        "Containerfile:2: only one escape parser directive can be used: remove the others"
    );
    assert!(err("# escape=x\nFROM x\n").starts_with("Containerfile:1: invalid escape token \"x\""));
    // Unknown directives end the directive block without error.
    assert_eq!(p("# foo=bar\n# escape=`\nFROM x\n").escape, '\\');
}

#[test]
fn continuations_comments_and_empty_lines() {
    let f = p(concat!(
        "FROM x\n",
        "RUN echo a \\\n",
        "# a comment inside is dropped \\\n",
        "    && echo b \\\n",
        "\n",
        "  # indented comment too\n",
        "    && echo c\n",
        "RUN echo 'x \\\\'\n",
        "RUN echo d\\   \n",
        "  e\n",
        "  # trailing comment\n",
    ));
    let runs: Vec<_> = f
        .instructions
        .iter()
        .skip(1)
        .map(|i| (i.line, run_cmd(&i.kind).clone()))
        .collect();
    assert_eq!(
        runs,
        [
            (2, shell("echo a     && echo b     && echo c")),
            (8, shell("echo 'x \\\\'")),
            (9, shell("echo d  e")),
        ]
    );
    assert_eq!(f.instructions[1].end_line, 7);
    assert_eq!(f.warnings, ["Containerfile:7: empty continuation line"]);
    // A continuation at end of file ends the instruction.
    assert_eq!(
        run_cmd(&p("FROM x\nRUN a \\").instructions[1].kind),
        &shell("a")
    );
    // CRLF and a BOM.
    let f = p("\u{feff}FROM x\r\nRUN a \\\r\n b\r\n");
    assert_eq!(run_cmd(&f.instructions[1].kind), &shell("a  b"));
}

#[test]
fn exec_and_shell_forms() {
    let k = kinds(concat!(
        "FROM x\n",
        "RUN [\"echo\", \"a b\"]\n",
        "RUN [ \"echo\" , \"\\u00e9\\n\" ]  \n",
        "CMD [\"a\" \"b\"]\n",
        "ENTRYPOINT [\"/bin/sh\", \"-c\"] x\n",
        "CMD echo $HOME\n",
        "SHELL [\"/bin/bash\", \"-o\", \"pipefail\", \"-c\"]\n",
        "CMD\n",
    ));
    assert_eq!(run_cmd(&k[1]), &exec(&["echo", "a b"]));
    assert_eq!(run_cmd(&k[2]), &exec(&["echo", "é\n"]));
    assert_eq!(k[3], Kind::Cmd(shell("[\"a\" \"b\"]")));
    assert_eq!(k[4], Kind::Entrypoint(shell("[\"/bin/sh\", \"-c\"] x")));
    assert_eq!(k[5], Kind::Cmd(shell("echo $HOME")));
    assert_eq!(
        k[6],
        Kind::Shell(vec![
            "/bin/bash".into(),
            "-o".into(),
            "pipefail".into(),
            "-c".into()
        ])
    );
    assert_eq!(k[7], Kind::Cmd(shell("")));
    assert!(err("FROM x\nRUN [\"a\", 1]\n").contains(":2: when using JSON array syntax"));
    assert!(
        err("FROM x\nSHELL /bin/sh -c\n")
            .contains("SHELL requires the arguments to be in JSON form")
    );
    assert!(err("FROM x\nSHELL []\n").contains("SHELL requires at least one argument"));
}

#[test]
fn heredocs_as_buildkit_extracts_them() {
    let f = p(concat!(
        "FROM alpine\n",
        "RUN <<EMPTY\nEMPTY\n",
        "RUN 3<<EMPTY2\nEMPTY2\n",
        "RUN \"<<NOHEREDOC\"\n",
        "RUN <<INDENT\n\tfoo\n\tbar\nINDENT\n",
        "RUN <<-UNINDENT\n\tbaz\n\tquux\n\tUNINDENT\n",
        "RUN <<-'NOEXPAND'\n\tdon't expand $NAME\nNOEXPAND\n",
        "RUN <<COMMENT\n# internal comment\necho foo # trailing\nCOMMENT\n",
        "RUN --mount=type=cache,target=/foo <<MOUNT\necho hello\nMOUNT\n",
        "COPY <<FILE1 <<FILE2 /dest\ncontent 1\nFILE1\ncontent 2\nFILE2\n",
        "COPY <<X <<Y /dest\nY\nX\nX\nY\n",
        "RUN <<COMPLEX python3\nprint('hello world')\nCOMPLEX\n",
        "RUN <<eo'f'\necho foo\neof\n",
        "RUN <<eo\\'f\necho foo\neo'f\n",
        "RUN <<'e'o\\'f\necho foo\neo'f\n",
        "RUN <<'one two'\necho bar\none two\n",
        "RUN <<$EOF\n$EOF\n",
        "RUN <<  EOF  > foo\nEOF\n",
        "RUN cat <<A > /a && cat <<\"B\" > /b\n$x\nA\n$y\nB\n",
        "RUN [\"cat\", \"<<EOF\"]\n",
    ));
    let h = |name: &str, content: &str, expand: bool, chomp: bool, fd: u32| Heredoc {
        name: name.into(),
        content: content.into(),
        expand,
        chomp,
        fd,
    };
    let want: Vec<Vec<Heredoc>> = vec![
        vec![h("EMPTY", "", true, false, 0)],
        vec![h("EMPTY2", "", true, false, 3)],
        vec![],
        vec![h("INDENT", "\tfoo\n\tbar\n", true, false, 0)],
        vec![h("UNINDENT", "baz\nquux\n", true, true, 0)],
        vec![h("NOEXPAND", "don't expand $NAME\n", false, true, 0)],
        vec![h(
            "COMMENT",
            "# internal comment\necho foo # trailing\n",
            true,
            false,
            0,
        )],
        vec![h("MOUNT", "echo hello\n", true, false, 0)],
        vec![
            h("FILE1", "content 1\n", true, false, 0),
            h("FILE2", "content 2\n", true, false, 0),
        ],
        vec![h("X", "Y\n", true, false, 0), h("Y", "X\n", true, false, 0)],
        vec![h("COMPLEX", "print('hello world')\n", true, false, 0)],
        vec![h("eof", "echo foo\n", false, false, 0)],
        vec![h("eo'f", "echo foo\n", true, false, 0)],
        vec![h("eo'f", "echo foo\n", false, false, 0)],
        vec![h("one two", "echo bar\n", false, false, 0)],
        vec![h("$EOF", "", true, false, 0)],
        vec![h("EOF", "", true, false, 0)],
        vec![
            h("A", "$x\n", true, false, 0),
            h("B", "$y\n", false, false, 0),
        ],
        vec![],
    ];
    let got: Vec<Vec<Heredoc>> = f.instructions[1..]
        .iter()
        .map(|i| i.heredocs.clone())
        .collect();
    assert_eq!(got, want);
    // COPY gets its heredocs as sources; the instruction spans the bodies.
    let copy = &f.instructions[9];
    assert_eq!((copy.line, copy.end_line), (25, 29));
    match &copy.kind {
        Kind::Copy(c) => {
            assert_eq!(
                c.sources,
                [
                    Source::Heredoc(want[8][0].clone()),
                    Source::Heredoc(want[8][1].clone())
                ]
            );
            assert_eq!(c.dest, "/dest");
        }
        k => panic!("{k:?}"),
    }
    assert_eq!(run_cmd(&f.instructions[8].kind), &shell("<<MOUNT"));
    assert_eq!(f.instructions[11].original, "RUN <<COMPLEX python3");
}

#[test]
fn heredoc_errors() {
    assert_eq!(
        err("FROM x\nRUN <<EOF\necho\n"),
        "Containerfile:2: unterminated heredoc \"EOF\": end it with a line holding only \"EOF\""
    );
    assert!(
        err("FROM x\nCOPY a <<EOF\nx\nEOF\n")
            .contains("COPY cannot accept a heredoc as a destination")
    );
    // Not a heredoc instruction: the body lines are instructions (here, unknown ones).
    assert!(
        err("FROM x\nUSER <<INVALID\nINVALID\n")
            .starts_with("Containerfile:3: unknown instruction \"INVALID\"")
    );
}

#[test]
fn flags() {
    let k = kinds(concat!(
        "FROM --platform=$BUILDPLATFORM golang:1.22 AS Build\n",
        "COPY --from=build --chown=1:2 --chmod=0755 --link --exclude=*.md --exclude=x /a /b /dest/\n",
        "ADD --link=false --checksum=sha256:abc --keep-git-dir https://x/y.tar /\n",
        "RUN --mount=type=cache,target=/root/.cache --mount=type=secret,id=s --network=none echo hi\n",
        "COPY --from=\"my stage\" -- --weird /d\n",
    ));
    assert_eq!(
        k[0],
        Kind::From {
            image: "golang:1.22".into(),
            name: Some("build".into()),
            platform: Some("$BUILDPLATFORM".into())
        }
    );
    let Kind::Copy(c) = &k[1] else { panic!() };
    assert_eq!(c.from.as_deref(), Some("build"));
    assert_eq!(c.chown.as_deref(), Some("1:2"));
    assert_eq!(c.chmod.as_deref(), Some("0755"));
    assert!(c.link && !c.parents);
    assert_eq!(c.exclude, ["*.md", "x"]);
    assert_eq!(
        c.sources,
        [Source::Path("/a".into()), Source::Path("/b".into())]
    );
    let Kind::Add(a) = &k[2] else { panic!() };
    assert!(!a.link);
    assert_eq!(
        (a.checksum.as_deref(), a.keep_git_dir, a.unpack),
        (Some("sha256:abc"), Some(true), None)
    );
    let Kind::Run(r) = &k[3] else { panic!() };
    assert_eq!(
        r.mounts,
        ["type=cache,target=/root/.cache", "type=secret,id=s"]
    );
    assert_eq!(r.network.as_deref(), Some("none"));
    assert_eq!(r.command, shell("echo hi"));
    let Kind::Copy(c) = &k[4] else { panic!() };
    assert_eq!(c.from.as_deref(), Some("my stage"));
    assert_eq!(c.sources, [Source::Path("--weird".into())]);

    for (text, want) in [
        (
            "FROM x\nCOPY --form=a b c\n",
            "Containerfile:2: unknown flag: --form",
        ),
        (
            "FROM x\nCOPY --from a b\n",
            "Containerfile:2: missing a value on flag: --from",
        ),
        (
            "FROM x\nCOPY --from=a --from=b c d\n",
            "Containerfile:2: duplicate flag specified: --from",
        ),
        (
            "FROM x\nCOPY --link=maybe a b\n",
            "Containerfile:2: expecting boolean value for flag --link, not: maybe",
        ),
        (
            "FROM x\nADD --from=a b c\n",
            "Containerfile:2: unknown flag: --from",
        ),
        (
            "FROM x\nCMD --help\n",
            "Containerfile:2: unknown flag: --help",
        ),
        (
            "FROM x\nENV --a=b c=d\n",
            "Containerfile:2: unknown flag: --a",
        ),
    ] {
        assert_eq!(err(text), want, "{text:?}");
    }
}

#[test]
fn env_label_arg() {
    let k = kinds(concat!(
        "FROM x\n",
        "ENV A B C\n",
        "ENV a=1 b=\"x y\" c=z\\ w d='$q' e=\n",
        "LABEL \"com.example.vendor\"=\"ACME Inc\" version=1.0 description=\"multi \\\n  line\"\n",
        "ENV PATH=/usr/bin:$PATH\n",
        "ARG A B=2 C=\"3 4\" D=\n",
        "label k v\n",
    ));
    assert_eq!(k[1], Kind::Env(kv(&[("A", "B C")])));
    assert_eq!(
        k[2],
        Kind::Env(kv(&[
            ("a", "1"),
            ("b", "\"x y\""),
            ("c", "z\\ w"),
            ("d", "'$q'"),
            ("e", "")
        ]))
    );
    assert_eq!(
        k[3],
        Kind::Label(kv(&[
            ("\"com.example.vendor\"", "\"ACME Inc\""),
            ("version", "1.0"),
            ("description", "\"multi   line\""),
        ]))
    );
    assert_eq!(k[4], Kind::Env(kv(&[("PATH", "/usr/bin:$PATH")])));
    let arg = |n: &str, d: Option<&str>| ArgDef {
        name: n.into(),
        default: d.map(Into::into),
    };
    assert_eq!(
        k[5],
        Kind::Arg(vec![
            arg("A", None),
            arg("B", Some("2")),
            arg("C", Some("\"3 4\"")),
            arg("D", Some(""))
        ])
    );
    assert_eq!(k[6], Kind::Label(kv(&[("k", "v")])));
    for (text, want) in [
        ("FROM x\nENV A\n", "ENV A needs a value"),
        ("FROM x\nENV a=1 b\n", "can't find = in \"b\""),
        ("FROM x\nENV =1\n", "ENV names can not be blank"),
        ("FROM x\nLABEL\n", "LABEL requires at least one argument"),
        ("FROM x\nARG =1\n", "ARG names can not be blank"),
        ("FROM x\nARG\n", "ARG requires at least one argument"),
    ] {
        assert!(err(text).contains(want), "{text:?}: {}", err(text));
    }
}

#[test]
fn simple_instructions() {
    let k = kinds(concat!(
        "from x as A.b-c_1\n",
        "VOLUME /a /b\n",
        "VOLUME [\"/c d\"]\n",
        "EXPOSE 80/tcp 53/udp ${P}\n",
        "USER app:app\n",
        "WORKDIR /my dir\n",
        "STOPSIGNAL SIGKILL\n",
        "MAINTAINER Jane <j@x>\n",
        "ADD [\"a b\", \"/c d/\"]\n",
    ));
    assert_eq!(
        k[0],
        Kind::From {
            image: "x".into(),
            name: Some("a.b-c_1".into()),
            platform: None
        }
    );
    assert_eq!(k[1], Kind::Volume(vec!["/a".into(), "/b".into()]));
    assert_eq!(k[2], Kind::Volume(vec!["/c d".into()]));
    assert_eq!(
        k[3],
        Kind::Expose(vec!["80/tcp".into(), "53/udp".into(), "${P}".into()])
    );
    assert_eq!(k[4], Kind::User("app:app".into()));
    assert_eq!(k[5], Kind::Workdir("/my dir".into()));
    assert_eq!(k[6], Kind::StopSignal("SIGKILL".into()));
    assert_eq!(k[7], Kind::Maintainer("Jane <j@x>".into()));
    let Kind::Add(a) = &k[8] else { panic!() };
    assert_eq!(
        (a.sources.clone(), a.dest.as_str()),
        (vec![Source::Path("a b".into())], "/c d/")
    );
    for (text, want) in [
        ("FROM x AS 1st\n", "invalid name for build stage \"1st\""),
        ("FROM x AS\n", "FROM requires either one or three arguments"),
        (
            "FROM a b c\n",
            "FROM requires either one or three arguments",
        ),
        (
            "FROM x\nVOLUME [\"\"]\n",
            "VOLUME specified can not be an empty string",
        ),
        ("FROM x\nEXPOSE\n", "EXPOSE requires at least one argument"),
        ("FROM x\nUSER\n", "USER requires exactly one argument"),
        ("FROM x\nCOPY a\n", "COPY requires at least two arguments"),
    ] {
        assert!(err(text).contains(want), "{text:?}: {}", err(text));
    }
}

#[test]
fn onbuild_parses_its_instruction() {
    let f = p(
        "FROM x\nONBUILD RUN --mount=type=cache,target=/c make\nonbuild COPY <<EOF /f\nhi\nEOF\n",
    );
    let Kind::Onbuild { expression, inner } = &f.instructions[1].kind else {
        panic!()
    };
    assert_eq!(expression, "RUN --mount=type=cache,target=/c make");
    let Kind::Run(r) = &inner.kind else { panic!() };
    assert_eq!(r.mounts, ["type=cache,target=/c"]);
    let Kind::Onbuild { expression, inner } = &f.instructions[2].kind else {
        panic!()
    };
    assert_eq!(expression, "COPY <<EOF /f\nhi\nEOF");
    let Kind::Copy(c) = &inner.kind else { panic!() };
    assert!(matches!(&c.sources[0], Source::Heredoc(h) if h.content == "hi\n"));
    assert!(err("FROM x\nONBUILD ONBUILD RUN a\n").contains("chaining ONBUILD"));
    assert!(err("FROM x\nONBUILD FROM y\n").contains("FROM isn't allowed as an ONBUILD trigger"));
    assert!(err("FROM x\nONBUILD\n").contains("ONBUILD requires at least one argument"));
    assert!(err("FROM x\nONBUILD FOO\n").contains("unknown instruction \"FOO\""));
}

#[test]
fn healthcheck() {
    let k = kinds(concat!(
        "FROM x\n",
        "HEALTHCHECK NONE\n",
        "HEALTHCHECK --interval=1m30s --timeout=0.5s --start-period=300ms --retries=3 CMD curl -f http://localhost/\n",
        "HEALTHCHECK --interval=0 CMD [\"/bin/check\"]\n",
    ));
    assert_eq!(k[1], Kind::Healthcheck(Healthcheck::None));
    assert_eq!(
        k[2],
        Kind::Healthcheck(Healthcheck::Cmd {
            command: shell("curl -f http://localhost/"),
            interval: Some(Duration::from_secs(90)),
            timeout: Some(Duration::from_millis(500)),
            start_period: Some(Duration::from_millis(300)),
            start_interval: None,
            retries: Some(3),
        })
    );
    assert!(
        matches!(&k[3], Kind::Healthcheck(Healthcheck::Cmd { interval: None, command, .. }) if *command == exec(&["/bin/check"]))
    );
    for (text, want) in [
        (
            "HEALTHCHECK NONE x\n",
            "HEALTHCHECK NONE takes no arguments",
        ),
        ("HEALTHCHECK CMD\n", "missing command after HEALTHCHECK CMD"),
        ("HEALTHCHECK RUN x\n", "unknown type \"RUN\" in HEALTHCHECK"),
        (
            "HEALTHCHECK --interval=5 CMD x\n",
            "invalid duration \"5\" for --interval",
        ),
        (
            "HEALTHCHECK --timeout=10us CMD x\n",
            "--timeout cannot be less than 1ms",
        ),
        (
            "HEALTHCHECK --retries=-1 CMD x\n",
            "--retries must be a non-negative number",
        ),
        ("HEALTHCHECK --user=x CMD x\n", "unknown flag: --user"),
    ] {
        let text = format!("FROM x\n{text}");
        assert!(err(&text).contains(want), "{text:?}: {}", err(&text));
    }
}

#[test]
fn unknown_instruction_and_empty_file() {
    assert_eq!(
        err("FROM x\n\nFORM y\n")
            .split(':')
            .take(3)
            .collect::<Vec<_>>(),
        ["Containerfile", "3", " unknown instruction \"FORM\""]
    );
    assert!(err("# only a comment\n\n").contains("file with no instructions"));
    assert!(err("").contains("file with no instructions"));
}

#[test]
fn original_text_kept_per_instruction() {
    let f = p("FROM x\n  RUN   echo a \\\n   b   \nCOPY --chown=1 a b\n");
    let o: Vec<_> = f
        .instructions
        .iter()
        .map(|i| (i.line, i.original.as_str()))
        .collect();
    assert_eq!(
        o,
        [
            (1, "FROM x"),
            (2, "RUN   echo a    b"),
            (4, "COPY --chown=1 a b")
        ]
    );
}
