use super::*;

const APP: &str = r#"
apiVersion: v1
kind: ConfigMap
metadata:
  name: settings
data:
  GREETING: hello
  LEVEL: "3"
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
  name: data
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: 1
  template:
    metadata:
      labels:
        app: web
    spec:
      restartPolicy: OnFailure
      securityContext:
        runAsUser: 1000
      volumes:
      - name: cache
        emptyDir: {}
      - name: db
        persistentVolumeClaim:
          claimName: data
      - name: conf
        hostPath:
          path: /srv/conf
          type: DirectoryOrCreate
      containers:
      - name: app
        image: alpine
        command: ["sh", "-c"]
        args: ["echo $GREETING"]
        workingDir: /work
        env:
        - name: PASSWORD
          valueFrom:
            secretKeyRef: {name: creds, key: PASSWORD}
        envFrom:
        - configMapRef: {name: settings}
        ports:
        - containerPort: 80
          hostPort: 8080
          hostIP: 127.0.0.1
        - containerPort: 9000
        volumeMounts:
        - {name: cache, mountPath: /cache}
        - {name: db, mountPath: /db}
        - {name: conf, mountPath: /conf, readOnly: true}
        securityContext:
          runAsGroup: 1000
          readOnlyRootFilesystem: true
          capabilities: {add: [NET_ADMIN], drop: [ALL]}
        resources:
          limits: {memory: 128Mi, cpu: 500m}
"#;

#[test]
fn a_deployment_with_its_sources() {
    let play = parse(APP).unwrap();
    assert_eq!(play.claims, ["data"]);
    let pod = &play.pods[0];
    assert_eq!(pod.name, "web-pod");
    assert_eq!(pod.restart, "on-failure");
    assert_eq!(pod.publish, ["127.0.0.1:8080:80/tcp"]);
    assert_eq!(pod.shared_volumes, ["web-pod-cache"]);
    assert_eq!(pod.create_dirs, ["/srv/conf"]);
    let c = &pod.containers[0];
    assert_eq!(
        c.command.as_deref(),
        Some(&["sh".to_string(), "-c".into()][..])
    );
    assert_eq!(c.args, ["echo $GREETING"]);
    assert_eq!(c.env, ["GREETING=hello", "LEVEL=3", "PASSWORD=s3cr3t"]);
    assert_eq!(c.user.as_deref(), Some("1000:1000"));
    assert!(c.read_only);
    assert_eq!(c.cap_add, ["NET_ADMIN"]);
    assert_eq!(c.cap_drop, ["ALL"]);
    assert_eq!(
        c.volumes,
        ["web-pod-cache:/cache", "data:/db", "/srv/conf:/conf:ro"]
    );
    assert_eq!(c.memory, Some(128 << 20));
    assert_eq!(c.cpus, Some(0.5));
    assert_eq!(c.working_dir.as_deref(), Some("/work"));
}

#[test]
fn unsupported_kinds_name_the_kind_and_line() {
    let y = "kind: Pod\nmetadata: {name: a}\nspec:\n  containers: [{name: c, image: alpine}]\n---\napiVersion: v1\nkind: Service\nmetadata: {name: s}\n";
    let e = parse(y).unwrap_err().to_string();
    assert!(e.contains("line 7") && e.contains("\"Service\""), "{e}");
}

#[test]
fn bad_documents_are_refused() {
    let pod = |spec: &str| format!("kind: Pod\nmetadata: {{name: ab}}\nspec:\n{spec}");
    let e = parse(&pod("  containers: []\n")).unwrap_err().to_string();
    assert!(e.contains("spec.containers"), "{e}");
    let e = parse(&pod(
        "  containers:\n  - name: c\n    image: alpine\n    env:\n    - name: X\n      valueFrom: {configMapKeyRef: {name: nope, key: k}}\n",
    ))
    .unwrap_err()
    .to_string();
    assert!(e.contains("ConfigMap \"nope\""), "{e}");
    let e = parse("kind: Deployment\nmetadata: {name: d}\nspec:\n  replicas: 3\n  template: {spec: {containers: [{name: c, image: x}]}}\n")
        .unwrap_err()
        .to_string();
    assert!(e.contains("replicas: 3"), "{e}");
    assert!(parse("kind: ConfigMap\nmetadata: {name: x}\n").is_err());
    let e = parse("kind: Pod\nmetadata: {name: ab}\nspec: [\n")
        .unwrap_err()
        .to_string();
    assert!(e.contains("not valid YAML"), "{e}");
}

#[test]
fn quantities() {
    assert_eq!(memory_quantity("1Gi"), Some(1 << 30));
    assert_eq!(memory_quantity("500M"), Some(500_000_000));
    assert_eq!(memory_quantity("1000"), Some(1000));
    assert_eq!(memory_quantity("lots"), None);
    assert_eq!(cpu_quantity("250m"), Some(0.25));
    assert_eq!(cpu_quantity("2"), Some(2.0));
    assert_eq!(cpu_quantity("0"), None);
}

#[test]
fn annotations_and_sysctls_come_back_as_the_pods() {
    let play = parse(
        r#"
apiVersion: v1
kind: Pod
metadata:
  name: shop
  annotations:
    team: shop
    io.box.generated-by: box generate kube
spec:
  securityContext:
    sysctls:
    - name: kernel.msgmax
      value: "65536"
  containers:
  - name: web
    image: alpine
"#,
    )
    .unwrap();
    let pod = &play.pods[0];
    assert_eq!(
        pod.annotations.iter().collect::<Vec<_>>(),
        [(&"team".to_string(), &"shop".to_string())]
    );
    assert_eq!(pod.sysctls, [("kernel.msgmax".into(), "65536".into())]);
    let bad = parse(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\nspec:\n  securityContext:\n    sysctls:\n    - name: kernel.msgmax\n  containers:\n  - name: c\n    image: alpine\n",
    );
    assert!(
        bad.unwrap_err().to_string().contains("sysctls"),
        "a sysctl without a value is refused"
    );
}
