use super::*;

fn opts() -> Options {
    Options {
        box_path: "/usr/local/bin/box".into(),
        global_args: vec![],
        volume_names: [("data.volume".to_string(), "mydata".to_string())].into(),
        image_names: [("base.image".to_string(), "quay.io/x/base:1".to_string())].into(),
        network_names: [("back.network".to_string(), "backnet".to_string())].into(),
        pod_names: [("web.pod".to_string(), "systemd-web".to_string())].into(),
        pod_members: [("web.pod".to_string(), vec!["app.service".to_string()])].into(),
    }
}

fn gen_(text: &str) -> Result<Generated, String> {
    container(
        &Source {
            path: "/home/u/.config/box/systemd/web.container",
            name: "web.container",
            text,
        },
        &opts(),
    )
}

const WEB: &str = "\
# a web server
[Unit]
Description=The web server

[Container]
Image=docker.io/library/nginx:latest
ContainerName=web
PublishPort=127.0.0.1:8080:80
Volume=webdata:/usr/share/nginx/html:ro
Environment=A=1 \"B=two words\"
EnvironmentFile=/home/u/web.env
Label=app=web tier=front
HealthCmd=wget -q -O /dev/null http://localhost/
HealthInterval=10s
HealthOnFailure=restart
Notify=healthy
AutoUpdate=registry
BoxArgs=--memory 64m
Exec=nginx -g \"daemon off;\"

[Service]
Restart=always

[Install]
WantedBy=default.target
";

#[test]
fn a_container_file_becomes_a_notify_service() {
    let g = gen_(WEB).unwrap();
    assert_eq!(g.unit_name, "web.service");
    assert!(g.warnings.is_empty(), "{:?}", g.warnings);
    let t = &g.text;
    for line in [
        "[Unit]",
        "Description=The web server",
        "SourcePath=/home/u/.config/box/systemd/web.container",
        "Type=notify",
        "NotifyAccess=all",
        "Delegate=yes",
        "KillMode=mixed",
        "Restart=always",
        "ExecStartPre=-/usr/local/bin/box rm -f web",
        "ExecStop=/usr/local/bin/box stop -t 10 web",
        "ExecStopPost=-/usr/local/bin/box rm -f web",
        "[Install]",
        "WantedBy=default.target",
        "[X-Container]",
    ] {
        assert!(t.lines().any(|l| l == line), "{line} missing:\n{t}");
    }
    assert!(!t.contains("Restart=on-failure"), "[Service] wins:\n{t}");
    let exec = t.lines().find(|l| l.starts_with("ExecStart=")).unwrap();
    assert_eq!(
        exec,
        "ExecStart=/usr/local/bin/box run --rm --sdnotify=healthy --stop-timeout 10 --name web \
         -p 127.0.0.1:8080:80 -v webdata:/usr/share/nginx/html:ro -e A=1 -e \"B=two words\" \
         --env-file /home/u/web.env -l app=web -l tier=front \
         --health-cmd \"wget -q -O /dev/null http://localhost/\" --health-interval 10s \
         --health-on-failure restart -l io.containers.autoupdate=registry --memory 64m \
         docker.io/library/nginx:latest nginx -g \"daemon off;\""
    );
}

#[test]
fn defaults_and_warnings_name_file_and_line() {
    let g = gen_("[Container]\nImage=alpine\nFrobnicate=yes\nSecret=x\n").unwrap();
    assert!(g.text.contains("--sdnotify=ready"), "{}", g.text);
    assert!(g.text.contains(" --name systemd-web "), "{}", g.text);
    assert!(g.text.contains("\nRestart=on-failure\n"), "{}", g.text);
    assert_eq!(g.warnings.len(), 2, "{:?}", g.warnings);
    assert!(
        g.warnings[0].starts_with("/home/u/.config/box/systemd/web.container:3: ")
            && g.warnings[0].contains("Frobnicate"),
        "{:?}",
        g.warnings
    );
    assert!(g.warnings[1].contains(":4: Secret="), "{:?}", g.warnings);
}

#[test]
fn errors_name_file_and_line() {
    let e = gen_("[Container]\nPublishPort=80\n").unwrap_err();
    assert!(e.contains("web.container") && e.contains("Image="), "{e}");
    let e = gen_("Image=alpine\n").unwrap_err();
    assert!(e.contains("web.container:1:"), "{e}");
    let e = gen_("[Container]\nImage=alpine\njunk\n").unwrap_err();
    assert!(e.contains("web.container:3:"), "{e}");
    let e = gen_("[Container]\nImage=alpine\nExec=sh -c 'oops\n").unwrap_err();
    assert!(e.contains("web.container:3:") && e.contains("quote"), "{e}");
    let e = gen_("[Container]\nImage=alpine\nAutoUpdate=sometimes\n").unwrap_err();
    assert!(e.contains(":3:"), "{e}");
}

#[test]
fn words_split_as_systemd() {
    assert_eq!(
        split_words(r#"a "b c" 'd e' f\ g"#).unwrap(),
        ["a", "b c", "d e", "f g"]
    );
    assert!(split_words("\"open").is_err());
}

#[test]
fn volume_files() {
    let src = Source {
        path: "/u/data.volume",
        name: "data.volume",
        text: "[Volume]\nVolumeName=mydata\nDriver=local\n",
    };
    assert_eq!(volume_name(&src).unwrap(), "mydata");
    let g = volume(&src, &opts()).unwrap();
    assert_eq!(g.unit_name, "data-volume.service");
    assert!(
        g.text.contains("\nType=oneshot\nRemainAfterExit=yes\n"),
        "{}",
        g.text
    );
    assert!(
        g.text
            .contains("\nExecStart=/usr/local/bin/box volume create mydata\n"),
        "{}",
        g.text
    );
    assert_eq!(g.warnings.len(), 1, "{:?}", g.warnings);
    assert!(
        g.warnings[0].starts_with("/u/data.volume:3: "),
        "{:?}",
        g.warnings
    );
    // A container mounting it: the volume's name, and the unit first.
    let c = gen_("[Container]\nImage=alpine\nVolume=data.volume:/data:ro\n").unwrap();
    assert!(c.text.contains(" -v mydata:/data:ro "), "{}", c.text);
    assert!(
        c.text
            .contains("\nRequires=data-volume.service\nAfter=data-volume.service\n"),
        "{}",
        c.text
    );
}

#[test]
fn image_files() {
    let src = Source {
        path: "/u/base.image",
        name: "base.image",
        text: "[Image]\nImage=quay.io/x/base:1\nTLSVerify=false\nArch=arm64\nCreds=a:b\n",
    };
    assert_eq!(
        image_name(&src).unwrap().as_deref(),
        Some("quay.io/x/base:1")
    );
    let g = image(&src, &opts()).unwrap();
    assert_eq!(g.unit_name, "base-image.service");
    assert!(
        g.text.contains(
            "\nExecStart=/usr/local/bin/box pull --tls-verify=false --platform linux/arm64 quay.io/x/base:1\n"
        ),
        "{}",
        g.text
    );
    assert!(
        g.warnings[0].starts_with("/u/base.image:5: "),
        "{:?}",
        g.warnings
    );
    let c = gen_("[Container]\nImage=base.image\n").unwrap();
    assert!(c.text.contains(" quay.io/x/base:1\n"), "{}", c.text);
    assert!(
        c.text.contains("\nRequires=base-image.service\n"),
        "{}",
        c.text
    );
    let e = gen_("[Container]\nImage=other.image\n").unwrap_err();
    assert!(e.contains(":2: Image=other.image"), "{e}");
}

fn src<'a>(path: &'a str, text: &'a str) -> Source<'a> {
    Source {
        path,
        name: path.rsplit('/').next().unwrap(),
        text,
    }
}

fn line_of<'a>(text: &'a str, key: &str) -> &'a str {
    text.lines()
        .find(|l| l.starts_with(key))
        .unwrap_or_else(|| panic!("no {key} in\n{text}"))
}

#[test]
fn network_files() {
    let f = src(
        "/u/back.network",
        "[Network]\nNetworkName=backnet\nSubnet=10.90.0.0/24\nGateway=10.90.0.1\n\
         Internal=true\nLabel=a=1 b=2\nDriver=bridge\nIPv6=true\nBoxArgs=--label c=3\nWhat=x\n\
         [Install]\nWantedBy=default.target\n",
    );
    assert_eq!(network_name(&f).unwrap(), "backnet");
    let g = network(&f, &opts()).unwrap();
    assert_eq!(g.unit_name, "back-network.service");
    assert!(
        g.text.contains("\nType=oneshot\nRemainAfterExit=yes\n"),
        "{}",
        g.text
    );
    assert_eq!(
        line_of(&g.text, "ExecStart="),
        "ExecStart=/usr/local/bin/box network create --ignore --subnet 10.90.0.0/24 \
         --gateway 10.90.0.1 --internal --label a=1 --label b=2 --driver bridge \
         --label c=3 backnet"
    );
    assert!(
        g.text.contains("\n[Install]\nWantedBy=default.target\n"),
        "{}",
        g.text
    );
    assert_eq!(g.warnings.len(), 2, "{:?}", g.warnings);
    assert!(
        g.warnings[0].starts_with("/u/back.network:8: IPv6="),
        "{:?}",
        g.warnings
    );
    assert!(
        g.warnings[1].starts_with("/u/back.network:10: unsupported key 'What'"),
        "{:?}",
        g.warnings
    );
    // The default name, and errors naming file:line.
    let f = src("/u/plain.network", "[Network]\n");
    assert_eq!(network_name(&f).unwrap(), "systemd-plain");
    let e = network(&src("/u/x.network", "[Network]\nInternal=maybe\n"), &opts()).unwrap_err();
    assert!(e.starts_with("/u/x.network:2: Internal=maybe"), "{e}");
    let e = network(&src("/u/x.network", "[Volume]\n"), &opts()).unwrap_err();
    assert!(e.contains("no [Network]"), "{e}");

    // A container on it: the network's name, and its unit first.
    let c = gen_("[Container]\nImage=alpine\nNetwork=back.network\n").unwrap();
    assert!(c.text.contains(" --network backnet alpine\n"), "{}", c.text);
    assert!(
        c.text
            .contains("\nRequires=back-network.service\nAfter=back-network.service\n"),
        "{}",
        c.text
    );
    let c = gen_("[Container]\nImage=alpine\nNetwork=none\n").unwrap();
    assert!(c.text.contains(" --network none alpine\n"), "{}", c.text);
    assert!(!c.text.contains("-network.service"), "{}", c.text);
    let e = gen_("[Container]\nImage=alpine\nNetwork=other.network\n").unwrap_err();
    assert!(e.contains("web.container:3: Network=other.network"), "{e}");
}

#[test]
fn pod_files() {
    let f = src(
        "/u/web.pod",
        "[Unit]\nDescription=a pod\n[Pod]\nPublishPort=127.0.0.1:8080:80\nNetwork=back.network\n\
         Label=tier=web\nVolume=v:/v\nBoxArgs=--hostname h\n",
    );
    assert_eq!(pod_name(&f).unwrap(), "systemd-web");
    let g = pod(&f, &opts()).unwrap();
    assert_eq!(g.unit_name, "web-pod.service");
    let t = &g.text;
    for line in [
        "[X-Pod]",
        "Description=a pod",
        "Requires=back-network.service",
        "After=back-network.service",
        "Wants=app.service",
        "Before=app.service",
        "Type=oneshot",
        "RemainAfterExit=yes",
        "ExecStartPre=-/usr/local/bin/box pod rm -f --ignore systemd-web",
        "ExecStartPre=/usr/local/bin/box pod create --name systemd-web -p 127.0.0.1:8080:80 \
         --network backnet --label tier=web --hostname h",
        "ExecStart=/usr/local/bin/box pod start systemd-web",
        "ExecStop=/usr/local/bin/box pod stop --ignore -t 10 systemd-web",
        "ExecStopPost=-/usr/local/bin/box pod rm -f --ignore systemd-web",
    ] {
        assert!(t.lines().any(|l| l == line), "{line} missing:\n{t}");
    }
    assert_eq!(g.warnings.len(), 1, "{:?}", g.warnings);
    assert!(
        g.warnings[0].starts_with("/u/web.pod:7: Volume="),
        "{:?}",
        g.warnings
    );
    let named = src("/u/web.pod", "[Pod]\nPodName=mine\n");
    assert_eq!(pod_name(&named).unwrap(), "mine");
    let e = pod(&src("/u/web.pod", "[Pod]\nNetwork=a\nNetwork=b\n"), &opts()).unwrap_err();
    assert!(e.starts_with("/u/web.pod:3: "), "{e}");

    // A container in it: --pod, bound to the pod's unit.
    let c = gen_("[Container]\nImage=alpine\nPod=web.pod\n").unwrap();
    assert!(c.text.contains(" --pod systemd-web alpine\n"), "{}", c.text);
    assert!(
        c.text
            .contains("\nBindsTo=web-pod.service\nAfter=web-pod.service\n"),
        "{}",
        c.text
    );
    assert_eq!(
        container_pod(&src("/u/app.container", "[Container]\nPod=web.pod\n")).unwrap(),
        Some("web.pod".into())
    );
    let e = gen_("[Container]\nImage=alpine\nPod=mypod\n").unwrap_err();
    assert!(e.contains("web.container:3: Pod=mypod"), "{e}");
}

#[test]
fn kube_files() {
    let f = src(
        "/u/cfg/app.kube",
        "[Kube]\nYaml=app.yaml\nNetwork=back.network\nPublishPort=8080:80\nConfigMap=c.yaml\n\
         AutoUpdate=registry\n[Install]\nWantedBy=default.target\n",
    );
    let g = kube(&f, &opts()).unwrap();
    assert_eq!(g.unit_name, "app.service");
    let t = &g.text;
    for line in [
        "[X-Kube]",
        "Requires=back-network.service",
        "Type=oneshot",
        "RemainAfterExit=yes",
        "ExecStart=/usr/local/bin/box kube play --replace --network backnet /u/cfg/app.yaml",
        "ExecStop=/usr/local/bin/box kube down /u/cfg/app.yaml",
        "WantedBy=default.target",
    ] {
        assert!(t.lines().any(|l| l == line), "{line} missing:\n{t}");
    }
    let w: Vec<_> = g
        .warnings
        .iter()
        .map(|w| w.split(' ').next().unwrap())
        .collect();
    assert_eq!(
        w,
        [
            "/u/cfg/app.kube:4:",
            "/u/cfg/app.kube:5:",
            "/u/cfg/app.kube:6:"
        ],
        "{:?}",
        g.warnings
    );
    // An absolute Yaml= stays as it is.
    let g = kube(&src("/u/a.kube", "[Kube]\nYaml=/srv/a.yaml\n"), &opts()).unwrap();
    assert!(g.text.contains(" --replace /srv/a.yaml\n"), "{}", g.text);
    let e = kube(&src("/u/a.kube", "[Kube]\nNetwork=host\n"), &opts()).unwrap_err();
    assert!(e.contains("no Yaml="), "{e}");
}
