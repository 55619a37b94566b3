//! `box kube play|down` and `generate kube POD` as boxtest: the round trip (generate →
//! down → play brings the same pod back, answering on its port, and generates the same
//! YAML again), a Deployment with a ConfigMap, a Secret, a PersistentVolumeClaim and an
//! emptyDir shared by its two containers, and bad files: an unsupported kind named with
//! its line, name clashes, and a failure half-way that leaves nothing behind.
use std::net::TcpListener;
use std::time::Duration;

use crate::harness::lab::{Lab, free_port, read_from, until};
use crate::harness::which;

#[test]
fn generate_down_play_brings_the_same_pod_back() {
    let env = require_env!(alpine);
    if which("pasta").is_none() {
        crate::harness::skip("pasta is not installed");
        return;
    }
    let lab = Lab::new(env);
    let tb = &lab.tb;
    let port = free_port();
    tb.cmd([
        "pod",
        "create",
        "--name",
        "shop",
        "-p",
        &format!("127.0.0.1:{port}:80"),
    ])
    .run()
    .assert_success();
    tb.cmd([
        "run",
        "-d",
        "--pod",
        "shop",
        "--name",
        "web",
        "-e",
        "GREETING=hi",
        "--annotation",
        "team=shop",
        &lab.image,
        "nc",
        "-lk",
        "-p",
        "80",
        "-e",
        "echo",
        "hello-from-web",
    ])
    .run()
    .assert_success();
    let yaml = tb.cmd(["generate", "kube", "shop"]).run();
    yaml.assert_success()
        .stdout_contains("name: \"shop\"")
        .stdout_contains("hostPort: ")
        .stdout_contains("team")
        .stdout_lacks("box-pause");
    let file = tb.write("shop.yaml", yaml.out());
    let file = file.to_str().unwrap();
    // `box kube generate` is the same command.
    tb.cmd(["kube", "generate", "shop"])
        .run()
        .assert_success()
        .stdout_is(yaml.out());

    let out = tb.cmd(["kube", "down", file]).run();
    out.assert_success().stdout_contains("Pods removed:");
    tb.cmd(["pod", "exists", "shop"]).run().assert_code(1);
    tb.cmd(["ps", "-aq"]).run().assert_success().stdout_is("");

    let out = tb.cmd(["kube", "play", file]).run();
    out.assert_success()
        .stdout_contains("Pod:")
        .stdout_contains("Container:");
    until("the played pod to answer", Duration::from_secs(15), || {
        read_from(port).is_some_and(|s| s.contains("hello-from-web"))
    });
    tb.cmd([
        "pod",
        "ps",
        "--format",
        "{{.Name}} {{.Status}} {{.NumberOfContainers}}",
    ])
    .run()
    .assert_success()
    .stdout_is("shop Running 2\n");
    tb.cmd(["exec", "shop-web", "sh", "-c", "echo $GREETING; hostname"])
        .run()
        .assert_success()
        .stdout_is("hi\nshop\n");
    // The same app: the same YAML.
    tb.cmd(["generate", "kube", "shop"])
        .run()
        .assert_success()
        .stdout_is(yaml.out());

    // Playing it again clashes; --replace takes the old one down first.
    let out = tb.cmd(["kube", "play", file]).run();
    out.assert_code(125)
        .assert_one_line_error()
        .stderr_contains("exists already");
    tb.cmd(["play", "kube", "--replace", file])
        .run()
        .assert_success();
    until(
        "the replaced pod to answer",
        Duration::from_secs(15),
        || read_from(port).is_some_and(|s| s.contains("hello-from-web")),
    );
    tb.cmd(["play", "kube", "--down", file])
        .run()
        .assert_success();
    tb.cmd(["pod", "ps", "-q"])
        .run()
        .assert_success()
        .stdout_is("");
    tb.cmd(["ps", "-aq"]).run().assert_success().stdout_is("");
}

#[test]
fn deployment_with_config_secret_claim_and_shared_empty_dir() {
    let env = require_env!(alpine);
    let lab = Lab::new(env);
    let tb = &lab.tb;
    let yaml = format!(
        r#"apiVersion: v1
kind: ConfigMap
metadata:
  name: settings
data:
  GREETING: hello
---
apiVersion: v1
kind: Secret
metadata:
  name: creds
data:
  PASSWORD: czNjcjN0
---
apiVersion: v1
kind: PersistentVolumeClaim
metadata:
  name: kubedata
spec:
  accessModes: [ReadWriteOnce]
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: 1
  selector:
    matchLabels: {{app: web}}
  template:
    metadata:
      labels: {{app: web}}
    spec:
      hostNetwork: false
      volumes:
      - name: shared
        emptyDir: {{}}
      - name: data
        persistentVolumeClaim: {{claimName: kubedata}}
      containers:
      - name: writer
        image: {image}
        command: ["sh", "-c"]
        args: ["pwd > /shared/wd; echo $GREETING $PASSWORD > /shared/msg; echo kept > /data/p; exec sleep 300"]
        workingDir: /work
        envFrom:
        - configMapRef: {{name: settings}}
        env:
        - name: PASSWORD
          valueFrom:
            secretKeyRef: {{name: creds, key: PASSWORD}}
        volumeMounts:
        - {{name: shared, mountPath: /shared}}
        - {{name: data, mountPath: /data}}
      - name: reader
        image: {image}
        command: ["sleep", "300"]
        securityContext:
          readOnlyRootFilesystem: true
          capabilities: {{drop: [ALL]}}
        volumeMounts:
        - {{name: shared, mountPath: /shared, readOnly: true}}
"#,
        image = lab.image
    );
    let file = tb.write("web.yaml", &yaml);
    let file = file.to_str().unwrap();
    tb.cmd(["--log-level", "error", "kube", "play", file])
        .run()
        .assert_success();
    tb.cmd(["pod", "exists", "web-pod"]).run().assert_success();
    let mut msg = String::new();
    until(
        "the writer's files in the shared emptyDir",
        Duration::from_secs(15),
        || {
            let out = tb
                .cmd([
                    "exec",
                    "web-pod-reader",
                    "sh",
                    "-c",
                    "cat /shared/wd /shared/msg",
                ])
                .run();
            msg = out.out().to_string();
            out.success() && msg.ends_with("s3cr3t")
        },
    );
    assert_eq!(msg, "/work\nhello s3cr3t");
    // The reader's root is read-only, its capabilities dropped.
    tb.cmd(["exec", "web-pod-reader", "touch", "/x"])
        .run()
        .assert_failure();
    tb.cmd([
        "exec",
        "web-pod-reader",
        "grep",
        "CapEff",
        "/proc/self/status",
    ])
    .run()
    .assert_success()
    .stdout_contains("0000000000000000");
    tb.cmd(["volume", "ls", "-q"])
        .run()
        .assert_success()
        .stdout_contains("kubedata")
        .stdout_contains("web-pod-shared");

    // down: the pod and its emptyDir go, the claim stays with its data.
    tb.cmd(["kube", "down", file]).run().assert_success();
    tb.cmd(["pod", "exists", "web-pod"]).run().assert_code(1);
    let vols = tb.cmd(["volume", "ls", "-q"]).run();
    vols.assert_success()
        .stdout_contains("kubedata")
        .stdout_lacks("web-pod-shared");
    tb.cmd([
        "run",
        "--rm",
        "--network",
        "none",
        "-v",
        "kubedata:/d",
        &lab.image,
        "cat",
        "/d/p",
    ])
    .run()
    .assert_success()
    .stdout_is("kept\n");
    tb.cmd(["volume", "rm", "kubedata"]).run().assert_success();
}

#[test]
fn bad_yaml_creates_nothing() {
    let env = require_env!(alpine);
    let lab = Lab::new(env);
    let tb = &lab.tb;
    let pod = |name: &str, extra: &str| {
        format!(
            "apiVersion: v1\nkind: Pod\nmetadata:\n  name: {name}\nspec:\n  containers:\n  - name: c\n    image: {}\n    command: [sleep, \"300\"]\n{extra}",
            lab.image
        )
    };
    // An unsupported kind: named, with its line, and nothing made of the pod before it.
    let yaml = format!(
        "{}---\napiVersion: v1\nkind: Service\nmetadata:\n  name: s\n",
        pod("one", "")
    );
    let file = tb.write("svc.yaml", &yaml);
    let out = tb.cmd(["kube", "play", file.to_str().unwrap()]).run();
    out.assert_code(125)
        .assert_one_line_error()
        .stderr_contains("unsupported kind \"Service\"")
        .stderr_contains("line 12");
    tb.cmd(["pod", "ps", "-q"])
        .run()
        .assert_success()
        .stdout_is("");

    // Not YAML at all.
    let out = tb
        .cmd(["kube", "play", "-"])
        .stdin("kind: Pod\nspec: [\n")
        .run();
    out.assert_code(125)
        .assert_one_line_error()
        .stderr_contains("not valid YAML");

    // A failure half-way (the second pod's host port is taken): the first pod and the
    // claim made for it are removed again.
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let second = pod(
        "two",
        &format!(
            "    ports:\n    - containerPort: 80\n      hostPort: {port}\n      hostIP: 127.0.0.1\n"
        ),
    );
    let yaml = format!(
        "apiVersion: v1\nkind: PersistentVolumeClaim\nmetadata:\n  name: halfway\n---\n{}---\n{second}",
        pod("one", "")
    );
    let file = tb.write("half.yaml", &yaml);
    let out = tb.cmd(["kube", "play", file.to_str().unwrap()]).run();
    out.assert_code(125)
        .assert_one_line_error()
        .stderr_contains("already in use");
    tb.cmd(["pod", "ps", "-q"])
        .run()
        .assert_success()
        .stdout_is("");
    tb.cmd(["ps", "-aq"]).run().assert_success().stdout_is("");
    tb.cmd(["volume", "ls", "-q"])
        .run()
        .assert_success()
        .stdout_lacks("halfway");
    drop(taken);

    // A clash with a pod that exists: refused before anything is made.
    tb.cmd(["pod", "create", "--name", "one", "--network", "none"])
        .run()
        .assert_success();
    let file = tb.write("one.yaml", pod("one", ""));
    let out = tb.cmd(["kube", "play", file.to_str().unwrap()]).run();
    out.assert_code(125)
        .assert_one_line_error()
        .stderr_contains("a pod named one exists already");
    tb.cmd(["pod", "rm", "-f", "one"]).run().assert_success();
}
