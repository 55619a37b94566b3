//! Cases from BuildKit's `shell/envVarTest`, `shell/wordsTest` and `lex_test.go`.
use super::*;

fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// `None` means "must fail".
const WORD_CASES: &[(&str, Option<&str>)] = &[
    ("hello", Some("hello")),
    ("he'll'o", Some("hello")),
    ("he'llo", None),
    ("he\\'llo", Some("he'llo")),
    ("he\\\\'llo", None),
    ("abc\\tdef", Some("abctdef")),
    ("\"abc\\tdef\"", Some("abc\\tdef")),
    ("\"abc\\\\tdef\"", Some("abc\\tdef")),
    ("'abc\\tdef'", Some("abc\\tdef")),
    ("hello\\", Some("hello")),
    ("hello\\\\", Some("hello\\")),
    ("\"hello", None),
    ("\"hello\\\"", None),
    ("\"hel'lo\"", Some("hel'lo")),
    ("'hello", None),
    ("'hello\\'", Some("hello\\")),
    ("'hello\\there'", Some("hello\\there")),
    ("\"''\"", Some("''")),
    ("$.", Some("$.")),
    ("he$1x", Some("hex")),
    ("he$.x", Some("he$.x")),
    ("he$pwd.", Some("he.")),
    ("he$PWD", Some("he/home")),
    ("he\\$PWD", Some("he$PWD")),
    ("he\\\\$PWD", Some("he\\/home")),
    ("\"he\\$PWD\"", Some("he$PWD")),
    ("\"he\\\\$PWD\"", Some("he\\/home")),
    ("\\${}", Some("${}")),
    ("he\\${}xx", Some("he${}xx")),
    ("${}", None),
    ("he${}xx", None),
    ("he${hi}xx", Some("hexx")),
    ("he${PWD}", Some("he/home")),
    ("he${.}", None),
    ("he${XXX:-000}xx", Some("he000xx")),
    ("he${PWD:-000}xx", Some("he/homexx")),
    ("he${XXX:-$PWD}xx", Some("he/homexx")),
    ("he${XXX:-${PWD:-yyy}}xx", Some("he/homexx")),
    ("he${XXX:-${YYY:-yyy}}xx", Some("heyyyxx")),
    ("he${XXX:YYY}", None),
    ("he${XXX?}", None),
    ("he${XXX:?}", None),
    ("he${PWD?}", Some("he/home")),
    ("he${PWD:?}", Some("he/home")),
    ("he${NULL?}", Some("he")),
    ("he${NULL:?}", None),
    ("he${XXX:+${PWD}}xx", Some("hexx")),
    ("he${PWD:+${XXX}}xx", Some("hexx")),
    ("he${PWD:+${SHELL}}xx", Some("hebashxx")),
    ("he${PWD:+000}xx", Some("he000xx")),
    ("'he${XX}'", Some("he${XX}")),
    ("\"he${PWD}\"", Some("he/home")),
    ("\"he'$PWD'\"", Some("he'/home'")),
    ("'$PWD'", Some("$PWD")),
    ("'\\$PWD'", Some("\\$PWD")),
    ("'\"hello\"'", Some("\"hello\"")),
    ("he${PWD", None),
    ("he${PWD:=000}xx", None),
    ("he${PWD:+${PWD}:}xx", Some("he/home:xx")),
    ("he${XXX:-\\$PWD:}xx", Some("he$PWD:xx")),
    ("he${XXX:-\\${PWD}z}xx", Some("he${PWDz}xx")),
    ("안'녕'하세요", Some("안녕하세요")),
    ("안녕$KOREAN", Some("안녕한국어")),
    ("${{aaa}", None),
    ("${aaa}}", Some("}")),
    ("${aaa:-bbb}}", Some("bbb}")),
    ("${aaa:-bbb", None),
    ("${aaa:-bbb ${foo}", None),
    ("${aaa:-bbb {foo}", Some("bbb {foo")),
    ("${:}", None),
    ("${:-bbb}", None),
    ("$1", Some("")),
    ("${1:-bbb}", Some("bbb")),
    ("$999aaa", Some("aaa")),
    ("${001:-bbb}aaa", Some("bbbaaa")),
    ("$@@@", Some("@@")),
    ("${@:-bbb}aaa", Some("bbbaaa")),
    ("$$", Some("")),
    ("${#:+bbb}", Some("")),
    ("${!:-bbb}", Some("bbb")),
    ("$0", Some("")),
];

#[test]
fn process_word_matches_buildkit_env_var_table() {
    let e = env(&[
        ("PWD", "/home"),
        ("SHELL", "bash"),
        ("KOREAN", "한국어"),
        ("NULL", ""),
    ]);
    let lex = Lexer::new('\\');
    for (input, want) in WORD_CASES {
        let got = lex.process_word(input, &e);
        match want {
            Some(w) => assert_eq!(got.as_deref(), Ok(*w), "input {input:?}"),
            None => assert!(got.is_err(), "input {input:?} gave {got:?}"),
        }
    }
}

#[test]
fn process_words_splits_after_expansion_like_buildkit_words_table() {
    let e = env(&[
        ("hi", "hi"),
        ("space", "abc  def"),
        ("leading", "  ab c"),
        ("trailing", "ab c   "),
    ]);
    let cases: &[(&str, &[&str])] = &[
        ("hello", &["hello"]),
        ("hello${hi}bye", &["hellohibye"]),
        ("hello${space}bye", &["helloabc", "defbye"]),
        ("hello\"${space}\"bye", &["helloabc  defbye"]),
        ("hello \"${space}\"bye", &["hello", "abc  defbye"]),
        ("hello${leading}def", &["hello", "ab", "cdef"]),
        ("hello\"${leading}\" def", &["hello  ab c", "def"]),
        ("hello${leading}", &["hello", "ab", "c"]),
        ("hello${trailing}", &["helloab", "c"]),
        ("hello${trailing}d", &["helloab", "c", "d"]),
        ("hello\"${trailing}\"d", &["helloab c   d"]),
        ("hel\"lo${trailing}\"", &["helloab c   "]),
        ("hello\" there  \"", &["hello there  "]),
        ("hello there     ", &["hello", "there"]),
        ("hello\\ there", &["hello there"]),
        ("hello\\\" there", &["hello\"", "there"]),
        ("hello\"\\\\there\"", &["hello\\there"]),
        ("hello'\\\\there'", &["hello\\\\there"]),
        ("hello'$there'", &["hello$there"]),
        ("\"\"", &[]),
    ];
    let lex = Lexer::new('\\');
    for (input, want) in cases {
        assert_eq!(
            lex.process_words(input, &e).unwrap(),
            want.to_vec(),
            "input {input:?}"
        );
    }
    assert!(lex.process_words("hello\" there", &e).is_err());
}

#[test]
fn unset_vs_empty_modifiers() {
    let e = env(&[("FOO", "xxx"), ("BAR", "")]);
    let lex = Lexer::new('\\');
    let cases: &[(&str, Option<&str>)] = &[
        ("${FOO-aaa} ${BAR-bbb} ${BAZ-ccc}", Some("xxx  ccc")),
        ("${FOO:-aaa} ${BAR:-bbb} ${BAZ:-ccc}", Some("xxx bbb ccc")),
        ("${FOO+aaa} ${BAR+bbb} ${BAZ+ccc}", Some("aaa bbb ")),
        ("${FOO:+aaa} ${BAR:+bbb} ${BAZ:+ccc}", Some("aaa  ")),
        ("${FOO?aaa}", Some("xxx")),
        ("${BAR?bbb}", Some("")),
        ("${BAZ?ccc}", None),
        ("${BAR:?bbb}", None),
        ("${FOO=aaa}", None),
    ];
    for (input, want) in cases {
        let got = lex.process_word(input, &e);
        match want {
            Some(w) => assert_eq!(got.as_deref(), Ok(*w), "input {input:?}"),
            None => assert!(got.is_err(), "input {input:?} gave {got:?}"),
        }
    }
    let err = lex.process_word("${BAZ:?must be set}", &e).unwrap_err();
    assert_eq!(
        err.to_string(),
        "failed to process \"${BAZ:?must be set}\": BAZ: must be set"
    );
}

#[test]
fn pattern_modifiers() {
    let lex = Lexer::new('\\');
    type Case<'a> = (&'a str, &'a [(&'a str, &'a str)], Option<&'a str>);
    let cases: &[Case] = &[
        (
            "${FOO#()[]{\\}^$.\\*\\?|\\\\}",
            &[("FOO", "()[]{}^$.*?|\\x")],
            Some("x"),
        ),
        ("${FOO%%\\**}", &[("FOO", "xx**")], Some("xx")),
        ("${FOO#*x*y}", &[("FOO", "xxyy")], Some("y")),
        ("${FOO#*}", &[("FOO", "xxyy")], Some("xxyy")),
        ("${FOO#$BAR}", &[("FOO", "xxyy"), ("BAR", "x")], Some("xyy")),
        ("${FOO##*x}", &[("FOO", "xxyy")], Some("yy")),
        ("${FOO#?\\?}", &[("FOO", "???y")], Some("?y")),
        (
            "${ABC:-.}${FOO%x}${ABC:-.}",
            &[("FOO", "xxyy")],
            Some(".xxyy."),
        ),
        ("${FOO%%\\**\\*}", &[("FOO", "a***yy*")], Some("a")),
        ("${FOO%y*}", &[("FOO", "xxyy")], Some("xxy")),
        ("${FOO:#}", &[], None),
        ("${FOO:%%}", &[], None),
        (
            "${FOO/$NEEDLE/.} - ${FOO//$NEEDLE/.}",
            &[("FOO", "/foo*/*/*.txt"), ("NEEDLE", "\\*/")],
            Some("/foo.*/*.txt - /foo..*.txt"),
        ),
        (
            "${FOO/$NEEDLE/} - ${FOO//$NEEDLE/}",
            &[("FOO", "/tmp/tmp/bar.txt"), ("NEEDLE", "/tmp")],
            Some("/tmp/bar.txt - /bar.txt"),
        ),
        (
            "${FOO/$N/$R} - ${FOO//$N/$R}",
            &[("FOO", "/a/foo/b/c.txt"), ("N", "/?/"), ("R", "/")],
            Some("/foo/b/c.txt - /foo/c.txt"),
        ),
        (
            "${FOO//\\//\\/}",
            &[("FOO", "/tmp/foo.txt")],
            Some("\\/tmp\\/foo.txt"),
        ),
        (
            "${FOO/$BAR/ww}",
            &[("FOO", "xxyy"), ("BAR", "")],
            Some("wwxxyy"),
        ),
        ("${FOO//ww}", &[("FOO", "xxyy")], None),
        ("${FOO//}", &[("FOO", "xxyy")], None),
        ("${FOO///}", &[("FOO", "xxyy")], Some("xxyy")),
        ("${FOO///}", &[], Some("")),
    ];
    for (input, vars, want) in cases {
        let got = lex.process_word(input, &env(vars));
        match want {
            Some(w) => assert_eq!(got.as_deref(), Ok(*w), "input {input:?}"),
            None => assert!(got.is_err(), "input {input:?} gave {got:?}"),
        }
    }
}

#[test]
fn backtick_escape_token() {
    let lex = Lexer::new('`');
    let e = env(&[("A", "x")]);
    assert_eq!(lex.process_word("`$A", &e).unwrap(), "$A");
    assert_eq!(lex.process_word("c:\\dir\\$A", &e).unwrap(), "c:\\dir\\x");
    assert_eq!(lex.process_word("\"a`\"b\"", &e).unwrap(), "a\"b");
}

#[test]
fn skip_unset_and_raw_modes_keep_text() {
    let lex = Lexer {
        skip_unset: true,
        raw_quotes: true,
        raw_escapes: true,
        ..Lexer::new('\\')
    };
    let e = env(&[("SET", "v")]);
    assert_eq!(
        lex.process_word("$X ${Y} ${Z:-d} $SET 'q' \\$", &e)
            .unwrap(),
        "$X ${Y} ${Z:-d} v 'q' \\$"
    );
    assert_eq!(
        lex.process_words("cat <<EOF > /f 3<<'E2'", &e).unwrap(),
        ["cat", "<<EOF", ">", "/f", "3<<'E2'"]
    );
    let heredoc = Lexer {
        skip_quotes: true,
        ..Lexer::new('\\')
    };
    assert_eq!(
        heredoc.process_word("say '$SET' \"$SET\"\n", &e).unwrap(),
        "say 'v' \"v\"\n"
    );
}

#[test]
fn env_list_first_wins() {
    let list = vec![
        ("A".to_string(), "1".to_string()),
        ("A".to_string(), "2".to_string()),
    ];
    assert_eq!(Lexer::new('\\').process_word("$A", &list).unwrap(), "1");
    assert_eq!(Lexer::new('\\').process_word("$A", &NoEnv).unwrap(), "");
}

fn expanded(text: &str, vars: &[(&str, &str)]) -> Result<Vec<Kind>, String> {
    let f = crate::build::parse::parse(text, "Containerfile").unwrap();
    f.instructions
        .iter()
        .map(|i| {
            expand_instruction(i, f.escape, &env(vars), "Containerfile")
                .map(|i| i.kind)
                .map_err(|e| e.to_string())
        })
        .collect()
}

#[test]
fn instructions_that_expand_and_those_that_do_not() {
    use crate::build::parse::{ArgDef, Command, KeyValue};
    let k = expanded(
        concat!(
            "FROM --platform=$P ${IMG:-alpine}:$TAG AS b\n",
            "ENV A=$X B=\"$X y\" C='$X' $X=k\n",
            "LABEL l=\"${X}\" m=a\\ b\n",
            "ARG D=${X}-d\n",
            "EXPOSE $PORTS 443\n",
            "COPY --from=$STAGE --chown=$U:$U $X \"/dst/\"\n",
            "COPY <<A <<'B' /x\n$X \"q\"\nA\n$X\nB\n",
            "WORKDIR /w/$X\n",
            "USER ${U}\n",
            "VOLUME [\"/v/$X\"]\n",
            "STOPSIGNAL $SIG\n",
            "RUN echo $X\n",
            "CMD [\"$X\"]\n",
        ),
        &[
            ("P", "linux/amd64"),
            ("TAG", "3.20"),
            ("X", "x"),
            ("PORTS", "80/tcp 53/udp"),
            ("STAGE", "b"),
            ("U", "1000"),
            ("SIG", "SIGTERM"),
        ],
    )
    .unwrap();
    assert_eq!(
        k[0],
        Kind::From {
            image: "alpine:3.20".into(),
            name: Some("b".into()),
            platform: Some("linux/amd64".into())
        }
    );
    let kv = |k: &str, v: &str| KeyValue {
        key: k.into(),
        value: v.into(),
    };
    assert_eq!(
        k[1],
        Kind::Env(vec![
            kv("A", "x"),
            kv("B", "x y"),
            kv("C", "$X"),
            kv("x", "k")
        ])
    );
    assert_eq!(k[2], Kind::Label(vec![kv("l", "x"), kv("m", "a b")]));
    assert_eq!(
        k[3],
        Kind::Arg(vec![ArgDef {
            name: "D".into(),
            default: Some("x-d".into())
        }])
    );
    assert_eq!(
        k[4],
        Kind::Expose(vec!["80/tcp".into(), "53/udp".into(), "443".into()])
    );
    let Kind::Copy(c) = &k[5] else { panic!() };
    assert_eq!(
        (
            c.from.as_deref(),
            c.chown.as_deref(),
            &c.sources,
            c.dest.as_str()
        ),
        (
            Some("b"),
            Some("1000:1000"),
            &vec![Source::Path("x".into())],
            "/dst/"
        )
    );
    let Kind::Copy(c) = &k[6] else { panic!() };
    let bodies: Vec<_> = c
        .sources
        .iter()
        .map(|s| match s {
            Source::Heredoc(h) => h.content.as_str(),
            Source::Path(p) => p.as_str(),
        })
        .collect();
    assert_eq!(bodies, ["x \"q\"\n", "$X\n"]);
    assert_eq!(k[7], Kind::Workdir("/w/x".into()));
    assert_eq!(k[8], Kind::User("1000".into()));
    assert_eq!(k[9], Kind::Volume(vec!["/v/x".into()]));
    assert_eq!(k[10], Kind::StopSignal("SIGTERM".into()));
    assert!(matches!(&k[11], Kind::Run(r) if r.command == Command::Shell("echo $X".into())));
    assert_eq!(k[12], Kind::Cmd(Command::Exec(vec!["$X".into()])));

    assert_eq!(
        expanded("FROM x\nWORKDIR ${A:?set A with --build-arg}\n", &[]).unwrap_err(),
        "Containerfile:2: failed to process \"${A:?set A with --build-arg}\": A: set A with --build-arg"
    );
    // The escape directive is the lexer's escape.
    let k = expanded("# escape=`\nFROM x\nWORKDIR c:\\`$X\\$X\n", &[("X", "x")]).unwrap();
    assert_eq!(k[1], Kind::Workdir("c:\\$X\\x".into()));
}
