//! The Helm chart and deploy/: lint, strict schema validation of every render and example,
//! deploy/ in step with the chart, the Grafana dashboard reading only metrics a real operator
//! exports, a real install, and least-privilege RBAC proven twice: by
//! `kubectl auth can-i` as the chart's ServiceAccount, and by running the operator with that
//! ServiceAccount's token until a StreamApp is Ready.
//!
//! helm, kubeconform and kubectl come from PATH (`make test` and `e2e/cluster.sh env` put the
//! pinned ones first); a missing tool fails the test, it never skips it.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use integration_tests::process::free_port;
use integration_tests::{
    Kafka, OperatorProcess, TestNamespace, client, install_crd, operator_binary, unique, wait_for,
};
use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::api::events::v1::Event;
use kstreams_operator::crd::StreamApp;
use kube::api::{Patch, PatchParams, PostParams};
use kube::{Api, Client};
use serde::Deserialize;
use serde_json::{Value, json};

const DEFAULT_RELEASE: &str = "kstreams-operator";
const DEFAULT_NAMESPACE: &str = "kstreams-system";
/// helm built from source reports Kubernetes v1.20 to `helm template` unless told otherwise.
const KUBE_VERSION: &str = "1.33.0";
const DRAFT7: &str = "http://json-schema.org/draft-07/schema#";
const LONG: Duration = Duration::from_secs(120);

// ---------------------------------------------------------------------------------------
// Tools and files

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .canonicalize()
        .expect("repository root")
}

fn chart() -> String {
    repo()
        .join("charts/kstreams-operator")
        .display()
        .to_string()
}

/// A command for `tool` as found on PATH; panics with the way to get it if it is not there.
fn tool(name: &str) -> Command {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let found = std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| p.is_file());
    match found {
        Some(p) => Command::new(p),
        None => panic!(
            "{name} not found on PATH: these tests need the pinned helm, kubeconform and kubectl. \
             Run them with `make test`, or `e2e/tools.sh all` then `eval \"$(e2e/cluster.sh env)\"`"
        ),
    }
}

/// Runs `cmd` with `stdin`; returns (success, stdout, stderr).
fn output(cmd: &mut Command, stdin: Option<&str>) -> (bool, String, String) {
    use std::io::Write;
    let mut child = cmd
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("starting {cmd:?}: {e}"));
    if let Some(input) = stdin {
        let mut pipe = child.stdin.take().expect("stdin");
        pipe.write_all(input.as_bytes()).expect("writing stdin");
    }
    let out = child
        .wait_with_output()
        .unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Runs `cmd` and returns its stdout; panics with its output if it fails.
fn run(cmd: &mut Command) -> String {
    let (ok, stdout, stderr) = output(cmd, None);
    assert!(ok, "{cmd:?} failed:\n{stdout}\n{stderr}");
    stdout
}

fn helm_template(release: &str, namespace: &str, sets: &[&str]) -> String {
    let mut cmd = tool("helm");
    cmd.args(["template", release, &chart(), "--namespace", namespace])
        .args(["--kube-version", KUBE_VERSION]);
    for s in sets {
        cmd.args(["--set", s]);
    }
    run(&mut cmd)
}

/// The documents of a multi-document YAML stream, empty ones left out.
fn docs(yaml: &str) -> Vec<Value> {
    serde_yaml::Deserializer::from_str(yaml)
        .map(|d| Value::deserialize(d).expect("a YAML document"))
        .filter(|v| !v.is_null())
        .collect()
}

/// `doc` with integral floats as integers: kustomize writes the CRD's `minimum: 0.0` as `0`.
fn integral(doc: Value) -> Value {
    match doc {
        Value::Number(n) => match n.as_f64() {
            Some(f) if n.is_f64() && f.fract() == 0.0 => json!(f as i64),
            _ => Value::Number(n),
        },
        Value::Array(items) => Value::Array(items.into_iter().map(integral).collect()),
        Value::Object(map) => {
            Value::Object(map.into_iter().map(|(k, v)| (k, integral(v))).collect())
        }
        other => other,
    }
}

fn key(doc: &Value) -> String {
    format!(
        "{}/{}/{}",
        doc["kind"].as_str().unwrap_or("?"),
        doc["metadata"]["namespace"].as_str().unwrap_or(""),
        doc["metadata"]["name"].as_str().unwrap_or("?")
    )
}

/// A directory removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new(prefix: &str) -> Self {
        let dir = std::env::temp_dir().join(unique(prefix));
        std::fs::create_dir_all(&dir).expect("temp dir");
        Self(dir)
    }

    fn write(&self, name: &str, text: &str) -> String {
        let path = self.0.join(name);
        std::fs::write(&path, text).unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
        path.display().to_string()
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

// ---------------------------------------------------------------------------------------
// JSON schemas for kubeconform: built-in kinds from the live apiserver's OpenAPI v2 (what
// openapi2jsonschema does, without Python), StreamApp from crds/streamapp.yaml. Strict: an
// object schema with properties gets `additionalProperties: false`, so unknown fields fail.

/// kubeconform's file name for a kind: `{{ .ResourceKind }}{{ .KindSuffix }}.json`.
fn schema_file(group: &str, version: &str, kind: &str) -> String {
    let group = group.split('.').next().unwrap_or_default();
    if group.is_empty() {
        format!("{}-{version}.json", kind.to_lowercase())
    } else {
        format!("{}-{group}-{version}.json", kind.to_lowercase())
    }
}

fn int_or_string(description: Option<&Value>) -> Value {
    let mut s = json!({"oneOf": [{"type": "string"}, {"type": "integer"}]});
    if let Some(d) = description {
        s["description"] = d.clone();
    }
    s
}

/// Makes `schema` strict and expresses Kubernetes' extensions in plain JSON schema.
fn strict(schema: &mut Value) {
    let Some(obj) = schema.as_object_mut() else {
        return;
    };
    if obj.get("format").and_then(Value::as_str) == Some("int-or-string")
        || obj.get("x-kubernetes-int-or-string") == Some(&Value::Bool(true))
    {
        *schema = int_or_string(obj.get("description"));
        return;
    }
    if obj.get("nullable") == Some(&Value::Bool(true))
        && let Some(Value::String(t)) = obj.get("type").cloned()
    {
        obj.insert("type".into(), json!([t, "null"]));
    }
    let preserve = obj.get("x-kubernetes-preserve-unknown-fields") == Some(&Value::Bool(true));
    if obj.contains_key("properties") && !obj.contains_key("additionalProperties") && !preserve {
        obj.insert("additionalProperties".into(), Value::Bool(false));
    }
    if let Some(Value::Object(props)) = obj.get_mut("properties") {
        props.values_mut().for_each(strict);
    }
    for k in ["additionalProperties", "items", "not"] {
        if let Some(v) = obj.get_mut(k) {
            match v {
                Value::Array(items) => items.iter_mut().for_each(strict),
                other => strict(other),
            }
        }
    }
    for k in ["allOf", "anyOf", "oneOf"] {
        if let Some(Value::Array(items)) = obj.get_mut(k) {
            items.iter_mut().for_each(strict);
        }
    }
}

/// Writes the schemas to `dir`; returns kubeconform's `-schema-location` for them.
fn write_schemas(dir: &TempDir) -> String {
    let openapi: Value =
        serde_json::from_str(&run(tool("kubectl").args(["get", "--raw", "/openapi/v2"])))
            .expect("the apiserver's OpenAPI v2 document");
    let defs = openapi["definitions"]
        .as_object()
        .expect("OpenAPI v2 definitions");
    let mut strict_defs = serde_json::Map::new();
    for (name, def) in defs {
        let mut def = if name == "io.k8s.apimachinery.pkg.api.resource.Quantity" {
            json!({"oneOf": [{"type": "string"}, {"type": "number"}]})
        } else {
            def.clone()
        };
        strict(&mut def);
        strict_defs.insert(name.clone(), def);
        for gvk in def_gvks(&defs[name]) {
            let (g, v, k) = gvk;
            let reference = format!("_definitions.json#/definitions/{name}");
            dir.write(
                &schema_file(&g, &v, &k),
                &json!({"$schema": DRAFT7, "$ref": reference}).to_string(),
            );
        }
    }
    dir.write(
        "_definitions.json",
        &json!({"$schema": DRAFT7, "definitions": strict_defs}).to_string(),
    );

    let crd: Value = serde_yaml::from_str(
        &std::fs::read_to_string(repo().join("crds/streamapp.yaml")).expect("crds/streamapp.yaml"),
    )
    .expect("CRD YAML");
    let group = crd["spec"]["group"].as_str().expect("CRD group");
    let kind = crd["spec"]["names"]["kind"].as_str().expect("CRD kind");
    for version in crd["spec"]["versions"].as_array().expect("CRD versions") {
        let mut schema = version["schema"]["openAPIV3Schema"].clone();
        strict(&mut schema);
        let props = schema["properties"]
            .as_object_mut()
            .expect("CRD schema properties");
        props.insert("apiVersion".into(), json!({"type": "string"}));
        props.insert("kind".into(), json!({"type": "string"}));
        props.insert(
            "metadata".into(),
            json!({"$ref": "_definitions.json#/definitions/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"}),
        );
        schema["$schema"] = json!(DRAFT7);
        let name = version["name"].as_str().expect("CRD version name");
        dir.write(&schema_file(group, name, kind), &schema.to_string());
    }
    format!(
        "{}/{{{{ .ResourceKind }}}}{{{{ .KindSuffix }}}}.json",
        dir.0.display()
    )
}

fn def_gvks(def: &Value) -> Vec<(String, String, String)> {
    def["x-kubernetes-group-version-kind"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|g| {
            let s = |k: &str| g[k].as_str().unwrap_or_default().to_string();
            (s("group"), s("version"), s("kind"))
        })
        .collect()
}

/// Runs `kubeconform -strict -summary` on `files`; returns (passed, output).
fn kubeconform(location: &str, files: &[String]) -> (bool, String) {
    let (ok, stdout, stderr) = output(
        tool("kubeconform")
            .args(["-strict", "-summary", "-output", "text"])
            .args(["-schema-location", location])
            .args(files),
        None,
    );
    (ok, format!("{stdout}{stderr}"))
}

/// Asserts kubeconform found every one of `expected` documents valid, none skipped.
fn assert_all_valid(location: &str, files: &[String], expected: usize) {
    let (ok, out) = kubeconform(location, files);
    let summary = format!("Valid: {expected}, Invalid: 0, Errors: 0, Skipped: 0");
    assert!(
        ok && out.contains(&summary),
        "kubeconform on {files:?}: expected '{summary}'; got:\n{out}"
    );
}

// ---------------------------------------------------------------------------------------

#[test]
fn chart_lints_clean_and_rejects_bad_values() {
    for sets in [
        vec![],
        vec!["watchNamespaces={team-a,team-b}"],
        vec![
            "metrics.serviceMonitor.enabled=true",
            "podAntiAffinity=required",
            "zoneSpread=false",
            "crds.install=false",
            "replicaCount=1",
            "leaderElection.enabled=false",
            "podDisruptionBudget.enabled=false",
            "grafanaDashboard.enabled=true",
        ],
    ] {
        let mut cmd = tool("helm");
        cmd.args(["lint", "--strict", &chart()]);
        for s in &sets {
            cmd.args(["--set", s]);
        }
        let out = run(&mut cmd);
        assert!(out.contains("0 chart(s) failed"), "{sets:?}: {out}");
    }
    // values.schema.json is strict, and nonsense combinations fail with a reason.
    for (set, expected) in [
        ("replicas=3", "additional properties 'replicas' not allowed"),
        ("logging.format=xml", "/logging/format"),
        ("watchNamespaces={Bad_Name}", "/watchNamespaces"),
        (
            "grafanaDashboard.namespace=Bad_Name",
            "/grafanaDashboard/namespace",
        ),
        (
            "leaderElection.enabled=false",
            "replicaCount > 1 needs leaderElection.enabled=true",
        ),
    ] {
        let (ok, stdout, stderr) = output(
            tool("helm")
                .args(["template", "x", &chart(), "--kube-version", KUBE_VERSION])
                .args(["--set", set]),
            None,
        );
        assert!(
            !ok && stderr.contains(expected),
            "--set {set} must fail with '{expected}'; got:\n{stdout}\n{stderr}"
        );
    }
}

#[tokio::test]
async fn renders_and_examples_validate_strictly() {
    let schemas = TempDir::new("chart-schemas");
    let location = write_schemas(&schemas);
    let work = TempDir::new("chart-renders");

    let cluster = helm_template(DEFAULT_RELEASE, DEFAULT_NAMESPACE, &[]);
    let namespaced = helm_template(
        "ops",
        "operators",
        &[
            "watchNamespaces={team-a,team-b}",
            "podAntiAffinity=required",
        ],
    );
    for (name, text) in [("cluster", &cluster), ("namespaced", &namespaced)] {
        let file = work.write(&format!("{name}.yaml"), text);
        assert_all_valid(&location, &[file], docs(text).len());
    }
    let examples: Vec<String> = ["wordcount.yaml", "full.yaml"]
        .iter()
        .map(|f| repo().join("deploy/examples").join(f).display().to_string())
        .collect();
    assert_all_valid(&location, &examples, examples.len());

    // The schemas are strict: unknown fields fail, so the green runs above mean something.
    let bad = work.write(
        "bad.yaml",
        "apiVersion: kstreams.dev/v1alpha1\nkind: StreamApp\nmetadata: {name: x}\n\
         spec: {image: x, kafka: {bootstrapServers: 'a:1'}, replica: 2}\n---\n\
         apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: x}\n\
         spec: {selector: {}, template: {spec: {containers: [{name: x, imag: x}]}}}\n",
    );
    let (ok, out) = kubeconform(&location, &[bad]);
    assert!(
        !ok && out.contains("Invalid: 2") && out.contains("replica") && out.contains("imag"),
        "unknown fields accepted:\n{out}"
    );

    // What each mode grants.
    let rules = |text: &str, kind: &str, namespace: Option<&str>| -> Vec<Value> {
        docs(text)
            .into_iter()
            .filter(|d| {
                d["kind"] == kind && namespace.is_none_or(|n| d["metadata"]["namespace"] == n)
            })
            .flat_map(|d| d["rules"].as_array().cloned().unwrap_or_default())
            .collect()
    };
    let grants_secrets = |rules: &[Value]| {
        rules.iter().any(|r| {
            r["resources"]
                .as_array()
                .is_some_and(|a| a.contains(&json!("secrets")))
        })
    };
    assert!(!grants_secrets(&rules(&cluster, "ClusterRole", None)));
    assert!(!grants_secrets(&rules(&namespaced, "ClusterRole", None)));
    assert_eq!(
        rules(&namespaced, "ClusterRole", None),
        vec![
            json!({"apiGroups": ["storage.k8s.io"], "resources": ["storageclasses"], "verbs": ["get"]}),
            json!({"apiGroups": [""], "resources": ["nodes"], "verbs": ["get", "list"]}),
            json!({"apiGroups": [""], "resources": ["persistentvolumes"], "verbs": ["get"]}),
        ],
        "namespaced mode: the only cluster-wide rights are reading StorageClasses, Nodes and PersistentVolumes"
    );
    for ns in ["team-a", "team-b"] {
        assert!(
            grants_secrets(&rules(&namespaced, "Role", Some(ns))),
            "{ns}"
        );
    }

    // The Deployment the operator runs as.
    let deployment = docs(&cluster)
        .into_iter()
        .find(|d| d["kind"] == "Deployment")
        .expect("a Deployment");
    let pod = &deployment["spec"]["template"]["spec"];
    let container = &pod["containers"][0];
    assert_eq!(deployment["spec"]["replicas"], 2);
    assert_eq!(
        container["image"],
        "ghcr.io/kstreams-dev/kstreams-operator:0.1.0"
    );
    let env: BTreeMap<&str, &Value> = container["env"]
        .as_array()
        .expect("env")
        .iter()
        .map(|e| (e["name"].as_str().unwrap(), e))
        .collect();
    assert_eq!(env["KSTREAMS_LEADER_ELECTION"]["value"], "true");
    assert_eq!(
        env["POD_NAMESPACE"]["valueFrom"]["fieldRef"]["fieldPath"],
        "metadata.namespace"
    );
    assert!(
        !env.contains_key("KSTREAMS_NAMESPACES"),
        "cluster mode watches all namespaces"
    );
    assert_eq!(container["securityContext"]["readOnlyRootFilesystem"], true);
    assert_eq!(
        container["securityContext"]["capabilities"]["drop"],
        json!(["ALL"])
    );
    assert_eq!(
        pod["securityContext"]["seccompProfile"]["type"],
        "RuntimeDefault"
    );
    assert_eq!(container["livenessProbe"]["httpGet"]["path"], "/livez");
    assert_eq!(container["readinessProbe"]["httpGet"]["path"], "/readyz");
    let namespaced_env = docs(&namespaced)
        .into_iter()
        .find(|d| d["kind"] == "Deployment")
        .expect("a Deployment")["spec"]["template"]["spec"]["containers"][0]["env"]
        .clone();
    assert!(
        namespaced_env
            .as_array()
            .unwrap()
            .contains(&json!({"name": "KSTREAMS_NAMESPACES", "value": "team-a,team-b"})),
        "{namespaced_env}"
    );

    // The optional ServiceMonitor selects the metrics Service by its labels and port.
    let monitored = docs(&helm_template(
        DEFAULT_RELEASE,
        DEFAULT_NAMESPACE,
        &["metrics.serviceMonitor.enabled=true"],
    ));
    let monitor = monitored
        .iter()
        .find(|d| d["kind"] == "ServiceMonitor")
        .expect("a ServiceMonitor");
    assert_eq!(monitor["apiVersion"], "monitoring.coreos.com/v1");
    let service = monitored
        .iter()
        .find(|d| d["kind"] == "Service")
        .expect("the metrics Service");
    for (k, v) in monitor["spec"]["selector"]["matchLabels"]
        .as_object()
        .unwrap()
    {
        assert_eq!(&service["metadata"]["labels"][k], v, "label {k}");
    }
    assert_eq!(
        monitor["spec"]["endpoints"][0]["port"],
        service["spec"]["ports"][0]["name"]
    );

    // The apiserver itself accepts the examples (CEL rules included) and the chart's CRD.
    let client = client().await;
    install_crd(&client).await;
    let ns = TestNamespace::new(&client, "chart-examples").await;
    for f in &examples {
        run(tool("kubectl").args(["create", "--dry-run=server", "-n", &ns.name, "-f", f]));
    }
    let crd = run(tool("helm")
        .args([
            "template",
            DEFAULT_RELEASE,
            &chart(),
            "--kube-version",
            KUBE_VERSION,
        ])
        .args(["--show-only", "templates/crd.yaml"]));
    let (ok, stdout, stderr) = output(
        tool("kubectl").args([
            "apply",
            "--dry-run=server",
            "--server-side",
            "--force-conflicts",
            "--field-manager=chart-test",
            "-f",
            "-",
        ]),
        Some(&crd),
    );
    assert!(
        ok,
        "the chart's CRD is refused by the apiserver:\n{stdout}\n{stderr}"
    );
    let crd = &docs(&crd)[0];
    assert_eq!(
        crd["metadata"]["annotations"]["helm.sh/resource-policy"],
        "keep"
    );
}

#[test]
fn generated_files_are_in_step() {
    // crds/ from the Rust types.
    let printed = run(Command::new(operator_binary()).arg("crd"));
    let committed = std::fs::read_to_string(repo().join("crds/streamapp.yaml")).unwrap();
    assert!(
        printed == committed,
        "crds/streamapp.yaml differs from `kstreams-operator crd`: run `make crd`"
    );
    // The chart's CRD from crds/.
    let tmp = TempDir::new("chart-crd");
    let fresh = tmp.0.join("crd.yaml");
    run(Command::new(repo().join("e2e/gen-chart-crd.sh"))
        .arg(repo().join("crds/streamapp.yaml"))
        .arg(&fresh));
    let chart_crd = repo().join("charts/kstreams-operator/templates/crd.yaml");
    assert!(
        std::fs::read_to_string(&fresh).unwrap() == std::fs::read_to_string(&chart_crd).unwrap(),
        "{} is stale: run `make crd`",
        chart_crd.display()
    );

    // deploy/ as kubectl builds it, against the chart's default render.
    let rendered: BTreeMap<String, Value> =
        docs(&helm_template(DEFAULT_RELEASE, DEFAULT_NAMESPACE, &[]))
            .into_iter()
            .map(|d| (key(&d), d))
            .collect();
    let mut built: BTreeMap<String, Value> =
        docs(&run(tool("kubectl").args([
            "kustomize",
            &repo().join("deploy").display().to_string(),
        ])))
        .into_iter()
        .map(|d| (key(&d), d))
        .collect();
    let namespace = built
        .remove(&format!("Namespace//{DEFAULT_NAMESPACE}"))
        .expect("deploy/ creates the kstreams-system Namespace");
    assert_eq!(
        namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"],
        "restricted"
    );
    let fix = "deploy/ differs from the chart's default render: run `make deploy-manifests`";
    assert_eq!(
        built.keys().collect::<Vec<_>>(),
        rendered.keys().collect::<Vec<_>>(),
        "{fix}"
    );
    for (k, doc) in &rendered {
        assert!(
            integral(built[k].clone()) == integral(doc.clone()),
            "{fix} ({k} differs)"
        );
    }
}

// ---------------------------------------------------------------------------------------
// The Grafana dashboard shipped with the chart.

const DASHBOARD: &str = "charts/kstreams-operator/dashboards/kstreams-operator.json";

fn dashboard() -> Value {
    serde_json::from_str(
        &std::fs::read_to_string(repo().join(DASHBOARD)).expect("the dashboard file"),
    )
    .expect("the dashboard is JSON")
}

/// Every panel, those inside collapsed rows too.
fn panels(dashboard: &Value) -> Vec<&Value> {
    let mut all = Vec::new();
    for p in dashboard["panels"].as_array().expect("panels") {
        all.push(p);
        all.extend(p["panels"].as_array().into_iter().flatten());
    }
    all
}

/// The metric names a PromQL expression reads: every identifier that is not a function, an
/// aggregation operator, a keyword, a label name (in `{...}` or in the parentheses after `by`, `without`, `on`,
/// `ignoring`, `group_left`, `group_right`), a string, a range or a Grafana variable.
fn promql_metric_names(expr: &str) -> BTreeSet<String> {
    // Aggregation operators take `by (...)` or `without (...)` before their parentheses.
    const KEYWORDS: [&str; 26] = [
        "sum",
        "min",
        "max",
        "avg",
        "group",
        "stddev",
        "stdvar",
        "count",
        "count_values",
        "bottomk",
        "topk",
        "quantile",
        "limitk",
        "by",
        "without",
        "on",
        "ignoring",
        "group_left",
        "group_right",
        "offset",
        "bool",
        "and",
        "or",
        "unless",
        "inf",
        "nan",
    ];
    const LABEL_LISTS: [&str; 6] = [
        "by",
        "without",
        "on",
        "ignoring",
        "group_left",
        "group_right",
    ];
    let chars: Vec<char> = expr.chars().collect();
    // The index just past the `close` matching the opener at `i`, quotes respected.
    let skip = |mut i: usize, close: char| -> usize {
        let mut quote = None;
        i += 1;
        while i < chars.len() {
            match (quote, chars[i]) {
                (Some(_), '\\') => i += 1,
                (Some(q), c) if c == q => quote = None,
                (None, '"' | '\'' | '`') => quote = Some(chars[i]),
                (None, c) if c == close => return i + 1,
                _ => {}
            }
            i += 1;
        }
        i
    };
    let ident = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == ':';
    let mut names = BTreeSet::new();
    let mut i = 0;
    while i < chars.len() {
        match chars[i] {
            q @ ('"' | '\'' | '`') => {
                i += 1;
                while i < chars.len() && chars[i] != q {
                    i += if chars[i] == '\\' { 2 } else { 1 };
                }
                i += 1;
            }
            '{' => i = skip(i, '}'),
            '[' => i = skip(i, ']'),
            '$' => {
                i += 1;
                if chars.get(i) == Some(&'{') {
                    i = skip(i, '}');
                }
                while i < chars.len() && ident(chars[i]) {
                    i += 1;
                }
            }
            c if c.is_ascii_digit() || c == '.' => {
                while i < chars.len() && (ident(chars[i]) || chars[i] == '.') {
                    i += 1;
                }
            }
            c if ident(c) => {
                let start = i;
                while i < chars.len() && ident(chars[i]) {
                    i += 1;
                }
                let word: String = chars[start..i].iter().collect();
                let mut next = i;
                while next < chars.len() && chars[next].is_whitespace() {
                    next += 1;
                }
                let opens = chars.get(next) == Some(&'(');
                let lower = word.to_lowercase();
                if LABEL_LISTS.contains(&lower.as_str()) && opens {
                    i = skip(next, ')');
                } else if !KEYWORDS.contains(&lower.as_str()) && !opens {
                    names.insert(word);
                }
            }
            _ => i += 1,
        }
    }
    names
}

/// The sample names a `/metrics` text exports: every family's `# TYPE`, with the suffixes
/// its samples carry (counters `_total`, histograms `_bucket`/`_sum`/`_count`), and every
/// sample line's name.
fn exported_names(text: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for line in text.lines() {
        if let Some(family) = line.strip_prefix("# TYPE ") {
            let (name, kind) = family.split_once(' ').expect("# TYPE name kind");
            let suffixes: &[&str] = match kind {
                "counter" => &["_total"],
                "histogram" | "gaugehistogram" => &["_bucket", "_sum", "_count"],
                "summary" => &["", "_sum", "_count"],
                _ => &[""],
            };
            names.extend(suffixes.iter().map(|s| format!("{name}{s}")));
        } else if !line.starts_with('#') && !line.is_empty() {
            let end = line.find(['{', ' ']).unwrap_or(line.len());
            names.insert(line[..end].to_string());
        }
    }
    names
}

/// Every PromQL expression of the dashboard with where it is: the panels' targets and the
/// template variables' `label_values(EXPR, label)` queries.
fn dashboard_exprs(dashboard: &Value) -> Vec<(String, String)> {
    let mut exprs = Vec::new();
    for p in panels(dashboard) {
        for t in p["targets"].as_array().into_iter().flatten() {
            let expr = t["expr"].as_str().expect("every target has an expr");
            exprs.push((
                format!("panel '{}'", p["title"].as_str().unwrap_or("?")),
                expr.to_string(),
            ));
        }
    }
    for v in dashboard["templating"]["list"]
        .as_array()
        .expect("templating")
    {
        if v["type"] == "query" {
            let query = v["query"]["query"].as_str().expect("a variable's query");
            let inner = query
                .strip_prefix("label_values(")
                .and_then(|q| q.strip_suffix(')'))
                .and_then(|q| q.rsplit_once(','))
                .map(|(expr, _label)| expr)
                .unwrap_or_else(|| panic!("variable {}: not label_values(EXPR, LABEL)", v["name"]));
            exprs.push((format!("variable {}", v["name"]), inner.to_string()));
        }
    }
    exprs
}

#[test]
fn promql_metric_names_finds_metrics_and_nothing_else() {
    assert_eq!(
        promql_metric_names(
            r#"histogram_quantile(0.99, sum by (le) (rate(a_bucket{job="x", le!~"1|2"}[$__rate_interval])))
               / on (job) group_left (zone) max without (pod) (b:recorded offset 5m) or vector(0)
               and c{name=~"${app}", msg="}{"} > bool 1e3"#
        ),
        ["a_bucket", "b:recorded", "c"]
            .map(String::from)
            .into_iter()
            .collect::<BTreeSet<_>>()
    );
}

#[test]
fn grafana_dashboard_configmap_renders_valid_with_the_sidecar_label() {
    let schemas = TempDir::new("dashboard-schemas");
    let location = write_schemas(&schemas);
    let work = TempDir::new("dashboard-renders");
    let configmaps = |text: &str| -> Vec<Value> {
        docs(text)
            .into_iter()
            .filter(|d| d["kind"] == "ConfigMap")
            .collect()
    };
    assert!(
        configmaps(&helm_template(DEFAULT_RELEASE, DEFAULT_NAMESPACE, &[])).is_empty(),
        "the dashboard is off by default"
    );

    let text = helm_template(
        DEFAULT_RELEASE,
        DEFAULT_NAMESPACE,
        &[
            "grafanaDashboard.enabled=true",
            "grafanaDashboard.namespace=monitoring",
            "grafanaDashboard.annotations.grafana_folder=Kafka",
        ],
    );
    let file = work.write("dashboard.yaml", &text);
    assert_all_valid(&location, &[file], docs(&text).len());
    let found = configmaps(&text);
    assert_eq!(found.len(), 1, "one dashboard ConfigMap:\n{text}");
    let cm = &found[0];
    assert_eq!(cm["metadata"]["namespace"], "monitoring");
    assert_eq!(cm["metadata"]["labels"]["grafana_dashboard"], "1");
    assert_eq!(
        cm["metadata"]["labels"]["app.kubernetes.io/instance"],
        DEFAULT_RELEASE
    );
    assert_eq!(cm["metadata"]["annotations"]["grafana_folder"], "Kafka");
    let data = cm["data"].as_object().expect("data");
    assert_eq!(data.len(), 1, "{data:?}");
    let shipped: Value = serde_json::from_str(
        data["kstreams-operator.json"]
            .as_str()
            .expect("the JSON key"),
    )
    .expect("the ConfigMap holds valid JSON");
    assert_eq!(
        shipped,
        dashboard(),
        "the ConfigMap holds {DASHBOARD} unchanged"
    );

    // Without a namespace of its own it goes with the release; the label is overridable.
    let text = helm_template(
        "ops",
        "operators",
        &[
            "grafanaDashboard.enabled=true",
            "grafanaDashboard.labels.grafana_dashboard=null",
            "grafanaDashboard.labels.team-dashboards=kafka",
        ],
    );
    let cm = &configmaps(&text)[0];
    assert_eq!(cm["metadata"]["namespace"], "operators");
    assert_eq!(cm["metadata"]["labels"]["team-dashboards"], "kafka");
    assert!(
        cm["metadata"]["labels"].get("grafana_dashboard").is_none(),
        "{cm}"
    );
}

#[tokio::test]
async fn grafana_dashboard_uses_only_metrics_the_operator_exports() {
    let dashboard = dashboard();
    assert_eq!(dashboard["schemaVersion"], 39);
    let variables = dashboard["templating"]["list"]
        .as_array()
        .expect("templating");
    assert!(
        variables.iter().any(|v| v["name"] == "datasource"
            && v["type"] == "datasource"
            && v["query"] == "prometheus"),
        "a Prometheus data source variable: {variables:?}"
    );
    let datasource = json!({"type": "prometheus", "uid": "${datasource}"});
    for p in panels(&dashboard)
        .into_iter()
        .filter(|p| p["type"] != "row")
    {
        assert_eq!(p["datasource"], datasource, "panel {}", p["title"]);
        for t in p["targets"].as_array().expect("targets") {
            assert_eq!(t["datasource"], datasource, "panel {}", p["title"]);
        }
    }

    // What a real operator exports.
    let client = client().await;
    install_crd(&client).await;
    let ns = TestNamespace::new(&client, "dashboard").await;
    let op = OperatorProcess::start("op-dashboard", &["--namespaces", &ns.name]);
    op.wait_ready(LONG).await;
    let (code, text) = op.get("/metrics").await.expect("/metrics answers");
    assert_eq!(code, 200, "{text}");
    let exported = exported_names(&text);

    let mut used = BTreeSet::new();
    for (place, expr) in dashboard_exprs(&dashboard) {
        let names = promql_metric_names(&expr);
        assert!(!names.is_empty(), "{place} reads no metric: {expr}");
        for name in names {
            assert!(
                exported.contains(&name),
                "{place} reads {name}, which the operator does not export.\nexported: {exported:?}"
            );
            used.insert(name);
        }
    }
    // What the dashboard is for: apps by condition, lag per app, errors, Kafka check latency.
    for needed in [
        "kstreams_app_condition",
        "kstreams_app_processing_lag_records",
        "kstreams_app_restore_lag_records",
        "kstreams_reconcile_errors_total",
        "kstreams_kafka_check_duration_seconds_bucket",
    ] {
        assert!(
            used.contains(needed),
            "the dashboard shows no {needed}: {used:?}"
        );
    }
}

// ---------------------------------------------------------------------------------------
// Installs into the local cluster.

/// A Helm release, uninstalled when dropped (also on panic).
struct Release {
    name: String,
    namespace: String,
}

impl Release {
    fn install(namespace: &str, sets: &[String]) -> Self {
        let name = unique("kstreams-operator");
        let mut cmd = tool("helm");
        cmd.args(["install", &name, &chart(), "--namespace", namespace])
            // The shared cluster's CRD is installed by the tests from the Rust types; the
            // chart's copy is checked by server-side dry run instead.
            .args(["--set", "crds.install=false"]);
        for s in sets {
            cmd.args(["--set", s]);
        }
        let notes = run(&mut cmd);
        assert!(
            notes.contains("kstreams-operator 0.1.0 is installed"),
            "{notes}"
        );
        Self {
            name,
            namespace: namespace.to_string(),
        }
    }

    fn service_account(&self) -> String {
        format!("system:serviceaccount:{}:{}", self.namespace, self.name)
    }
}

impl Drop for Release {
    fn drop(&mut self) {
        if std::env::var_os("KSO_KEEP_NAMESPACES").is_some() {
            return;
        }
        let _ = output(
            tool("helm").args(["uninstall", &self.name, "--namespace", &self.namespace]),
            None,
        );
    }
}

/// A namespace for the operator's own objects that enforces the restricted Pod Security
/// Standard, so an admitted operator pod proves the chart's pod is restricted-compliant.
async fn restricted_namespace(client: &Client, prefix: &str) -> TestNamespace {
    let ns = TestNamespace::new(client, prefix).await;
    Api::<Namespace>::all(client.clone())
        .patch(
            &ns.name,
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"labels": {
                "pod-security.kubernetes.io/enforce": "restricted",
                "pod-security.kubernetes.io/enforce-version": "latest",
            }}})),
        )
        .await
        .expect("labelling the namespace");
    ns
}

async fn wait_available(ns: &TestNamespace, name: &str) {
    wait_for(
        &ns.api::<Deployment>(),
        name,
        "Available=True with all replicas (pods admitted under the restricted Pod Security Standard)",
        LONG,
        |d: &Deployment| {
            let Some(s) = &d.status else { return false };
            let want = d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
            s.available_replicas.unwrap_or(0) == want
                && s.conditions
                    .iter()
                    .flatten()
                    .any(|c| c.type_ == "Available" && c.status == "True")
        },
    )
    .await;
}

/// `kubectl auth can-i VERB RESOURCE [-n NAMESPACE | -A] --as USER`.
fn can_i(user: &str, verb: &str, resource: &str, namespace: Option<&str>) -> bool {
    let mut cmd = tool("kubectl");
    // RESOURCE may carry flags: "streamapps.kstreams.dev --subresource=status".
    cmd.args(["auth", "can-i", verb])
        .args(resource.split_whitespace())
        .args(["--as", user]);
    match namespace {
        Some(ns) => cmd.args(["-n", ns]),
        None => cmd.arg("--all-namespaces"),
    };
    let (_, stdout, stderr) = output(&mut cmd, None);
    match stdout.split_whitespace().next() {
        Some("yes") => true,
        Some("no") => false,
        _ => panic!("{cmd:?}: no answer:\n{stdout}\n{stderr}"),
    }
}

/// Asserts every (verb, resource) in `allowed` is allowed and every one in `denied` is
/// denied for `user` in `namespace` (None: in all namespaces at once).
fn assert_rights(
    user: &str,
    namespace: Option<&str>,
    allowed: &[(&str, &str)],
    denied: &[(&str, &str)],
) {
    let wrong: Vec<String> = allowed
        .iter()
        .filter(|(v, r)| !can_i(user, v, r, namespace))
        .map(|(v, r)| format!("{v} {r} is denied but the operator needs it"))
        .chain(
            denied
                .iter()
                .filter(|(v, r)| can_i(user, v, r, namespace))
                .map(|(v, r)| format!("{v} {r} is allowed but the operator must not have it")),
        )
        .collect();
    assert!(
        wrong.is_empty(),
        "{user} in {}:\n{}",
        namespace.unwrap_or("all namespaces"),
        wrong.join("\n")
    );
}

/// What the operator does in a namespace it watches.
const APP_RIGHTS: &[(&str, &str)] = &[
    ("get", "streamapps.kstreams.dev"),
    ("list", "streamapps.kstreams.dev"),
    ("watch", "streamapps.kstreams.dev"),
    ("patch", "streamapps.kstreams.dev --subresource=status"),
    ("get", "statefulsets.apps"),
    ("list", "statefulsets.apps"),
    ("watch", "statefulsets.apps"),
    ("create", "statefulsets.apps"),
    ("patch", "statefulsets.apps"),
    ("delete", "statefulsets.apps"),
    ("get", "services"),
    ("list", "services"),
    ("watch", "services"),
    ("create", "services"),
    ("patch", "services"),
    ("get", "configmaps"),
    ("list", "configmaps"),
    ("watch", "configmaps"),
    ("create", "configmaps"),
    ("patch", "configmaps"),
    ("get", "poddisruptionbudgets.policy"),
    ("list", "poddisruptionbudgets.policy"),
    ("watch", "poddisruptionbudgets.policy"),
    ("create", "poddisruptionbudgets.policy"),
    ("patch", "poddisruptionbudgets.policy"),
    ("get", "pods"),
    ("list", "pods"),
    ("watch", "pods"),
    ("get", "persistentvolumeclaims"),
    ("list", "persistentvolumeclaims"),
    ("patch", "persistentvolumeclaims"),
    ("create", "events.events.k8s.io"),
    ("patch", "events.events.k8s.io"),
];

/// What the operator never does, in any mode.
const NEVER: &[(&str, &str)] = &[
    ("list", "secrets"),
    ("watch", "secrets"),
    ("delete", "persistentvolumeclaims"),
    ("create", "persistentvolumeclaims"),
    ("delete", "services"),
    ("delete", "configmaps"),
    ("delete", "pods"),
    ("create", "pods"),
    ("update", "streamapps.kstreams.dev"),
    ("patch", "streamapps.kstreams.dev"),
    ("create", "streamapps.kstreams.dev"),
    ("delete", "streamapps.kstreams.dev"),
    ("update", "statefulsets.apps"),
    ("create", "customresourcedefinitions.apiextensions.k8s.io"),
    ("update", "customresourcedefinitions.apiextensions.k8s.io"),
    ("create", "rolebindings.rbac.authorization.k8s.io"),
    ("create", "events"),
    ("create", "leases.coordination.k8s.io"),
];

fn assert_lease_rights(release: &Release) {
    let user = release.service_account();
    let own = format!("leases.coordination.k8s.io/{}", release.name);
    assert_rights(
        &user,
        Some(&release.namespace),
        &[
            ("get", own.as_str()),
            ("patch", own.as_str()),
            ("create", "leases.coordination.k8s.io"),
        ],
        &[
            ("get", "leases.coordination.k8s.io/some-other-lease"),
            ("patch", "leases.coordination.k8s.io/some-other-lease"),
            ("delete", own.as_str()),
            ("list", "leases.coordination.k8s.io"),
        ],
    );
}

/// The operator binary as a child process, run as the installed Deployment runs it (its
/// args and environment, the pod's name and namespace filled in) and authenticated as the
/// chart's ServiceAccount; killed when dropped, its log printed if the test failed. `args`
/// come last and override the Deployment's environment.
struct OperatorAs {
    _child: tokio::process::Child,
    log: PathBuf,
    _dir: TempDir,
}

impl OperatorAs {
    async fn start(release: &Release, ns: &TestNamespace, args: &[&str]) -> Self {
        let deployment = ns
            .api::<Deployment>()
            .get(&release.name)
            .await
            .expect("the chart's Deployment");
        let container = deployment
            .spec
            .and_then(|s| s.template.spec)
            .map(|s| s.containers[0].clone())
            .expect("the operator container");
        let pod_name = format!("{}-test", release.name);
        let env: Vec<(String, String)> = container
            .env
            .unwrap_or_default()
            .into_iter()
            .map(|e| {
                let field = e
                    .value_from
                    .as_ref()
                    .and_then(|v| v.field_ref.as_ref())
                    .map(|f| f.field_path.as_str());
                let value = match field {
                    Some("metadata.name") => pod_name.clone(),
                    Some("metadata.namespace") => release.namespace.clone(),
                    Some(other) => panic!("{}: unexpected fieldRef {other}", e.name),
                    None => e.value.clone().unwrap_or_default(),
                };
                (e.name, value)
            })
            .collect();

        let dir = TempDir::new("chart-operator");
        let token = run(tool("kubectl").args([
            "create",
            "token",
            &release.name,
            "--namespace",
            &release.namespace,
            "--duration=1h",
        ]));
        let kubeconfig = dir.write("kubeconfig", &service_account_kubeconfig(token.trim()));
        let log = dir.0.join("operator.log");
        let file = std::fs::File::create(&log).expect("operator log");
        let child = tokio::process::Command::new(operator_binary())
            .args(container.args.unwrap_or_default())
            // The Deployment's 0.0.0.0:8080 may be taken on this machine.
            .args(["--admin-addr", &format!("127.0.0.1:{}", free_port())])
            .args(args)
            .envs(env)
            .env("KUBECONFIG", kubeconfig)
            .stdout(Stdio::from(file.try_clone().expect("log handle")))
            .stderr(Stdio::from(file))
            .kill_on_drop(true)
            .spawn()
            .expect("starting kstreams-operator");
        Self {
            _child: child,
            log,
            _dir: dir,
        }
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for OperatorAs {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "--- operator log ({}) ---\n{}",
                self.log.display(),
                self.log_text()
            );
        }
    }
}

/// A kubeconfig for the cluster in KUBECONFIG that authenticates with `token` only.
fn service_account_kubeconfig(token: &str) -> String {
    let path = std::env::var("KUBECONFIG").expect("KUBECONFIG");
    let admin: Value =
        serde_yaml::from_str(&std::fs::read_to_string(&path).expect("KUBECONFIG file"))
            .expect("KUBECONFIG YAML");
    let context = admin["current-context"].as_str().expect("current-context");
    let cluster_name = admin["contexts"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|c| c["name"] == context)
        .expect("current context")["context"]["cluster"]
        .clone();
    let mut cluster = admin["clusters"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|c| c["name"] == cluster_name)
        .expect("current cluster")["cluster"]
        .clone();
    // A relative CA path is relative to the admin kubeconfig.
    if let Some(ca) = cluster["certificate-authority"].as_str() {
        let base = Path::new(&path).parent().unwrap_or(Path::new("."));
        cluster["certificate-authority"] = json!(base.join(ca).display().to_string());
    }
    json!({
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "cluster", "cluster": cluster}],
        "users": [{"name": "operator", "user": {"token": token}}],
        "contexts": [{"name": "operator", "context": {"cluster": "cluster", "user": "operator"}}],
        "current-context": "operator",
    })
    .to_string()
}

/// The word-count app reading `topic` from the test broker, with `extra_kafka` merged into
/// `spec.kafka`.
fn streamapp(name: &str, topic: &str, extra_kafka: Value) -> StreamApp {
    let kafka = Kafka::new("chart");
    let mut spec_kafka = json!({"bootstrapServers": kafka.bootstrap});
    if let (Some(k), Some(extra)) = (spec_kafka.as_object_mut(), extra_kafka.as_object()) {
        k.extend(extra.clone());
    }
    serde_json::from_value(json!({
        "apiVersion": "kstreams.dev/v1alpha1",
        "kind": "StreamApp",
        "metadata": {"name": name},
        "spec": {
            "image": "kstreams-examples/wordcount:0.1.0",
            "replicas": 2,
            "kafka": spec_kafka,
            "topics": {"inputs": [topic]},
            "state": {"storage": "1Gi", "mountPath": "/data/count-store"},
        }
    }))
    .expect("a StreamApp")
}

/// A `text-lines` topic of the test's own on the test broker.
async fn input_topic() -> String {
    Kafka::new("chart").create_topic("text-lines", 1, &[]).await
}

fn ready_at_current_generation(app: &StreamApp) -> bool {
    let Some(status) = &app.status else {
        return false;
    };
    status.observed_generation == app.metadata.generation
        && status.conditions.iter().any(|c| {
            c.type_ == "Ready"
                && c.status == "True"
                && c.observed_generation == app.metadata.generation
        })
}

/// Applies `app` in `ns`, waits until the operator reports it Ready, and checks the operator
/// was refused nothing and could publish its Events.
async fn app_becomes_ready(ns: &TestNamespace, app: StreamApp, operator: &OperatorAs) {
    let name = app.metadata.name.clone().unwrap();
    ns_create(ns, &app).await;
    wait_for(
        &ns.api::<StreamApp>(),
        &name,
        "Ready=True at the current generation, reconciled by the operator as the chart's ServiceAccount",
        LONG,
        ready_at_current_generation,
    )
    .await;
    let events = ns
        .api::<Event>()
        .list(&Default::default())
        .await
        .expect("listing events");
    assert!(
        events
            .items
            .iter()
            .any(|e| e.reason.as_deref() == Some("Ready")
                && e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some(name.as_str())),
        "the operator published no Ready event (events.k8s.io rights?): {:#?}",
        events.items
    );
    let log = operator.log_text().to_lowercase();
    assert!(
        !log.contains("forbidden"),
        "the operator was refused an API call:\n{}",
        operator.log_text()
    );
}

#[tokio::test]
async fn cluster_mode_install_grants_what_the_operator_needs_and_no_more() {
    let client = client().await;
    install_crd(&client).await;
    let op_ns = restricted_namespace(&client, "chart-cluster-op").await;
    let app_ns = TestNamespace::new(&client, "chart-cluster-app").await;
    let release = Release::install(&op_ns.name, &[]);
    wait_available(&op_ns, &release.name).await;

    let user = release.service_account();
    assert_rights(&user, Some(&app_ns.name), APP_RIGHTS, NEVER);
    assert_rights(
        &user,
        None,
        APP_RIGHTS,
        &[("get", "secrets"), ("list", "secrets")],
    );
    assert_rights(
        &user,
        Some(&app_ns.name),
        &[("get", "storageclasses.storage.k8s.io")],
        &[
            ("get", "secrets"),
            ("list", "storageclasses.storage.k8s.io"),
        ],
    );
    assert_lease_rights(&release);

    // For real: the operator as the Deployment runs it (leader election on, its Lease), with
    // the ServiceAccount's token, scoped to the test's namespace so it touches nothing else
    // in the shared cluster.
    // Kafka checks off: the app's kwok pods run nothing, so with them on it would never be
    // Ready (no member in its group), and Ready is what shows the rights suffice.
    let operator = OperatorAs::start(
        &release,
        &op_ns,
        &["--namespaces", &app_ns.name, "--kafka-refresh-seconds=0"],
    )
    .await;
    let app = streamapp("wordcount", &input_topic().await, json!({}));
    app_becomes_ready(&app_ns, app, &operator).await;

    // Without reset.allowStateWipe, a reset that wipes state is refused before its first
    // step, naming the value, and the app keeps running.
    let apps = app_ns.api::<StreamApp>();
    apps.patch(
        "wordcount",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"reset": {"id": "wipe-1", "inputOffsets": "Keep", "localState": "Wipe"}}})),
    )
    .await
    .expect("asking for a reset");
    let refused = wait_for(&apps, "wordcount", "the reset refused", LONG, |a| {
        integration_tests::condition(a, "Resetting").is_some_and(|c| c.1 == "ResetRefused")
    })
    .await;
    let message = integration_tests::condition(&refused, "Resetting")
        .unwrap()
        .2;
    assert!(
        message.contains("reset.allowStateWipe=true"),
        "the refusal names the chart value: {message}"
    );
    let sts = app_ns
        .api::<StatefulSet>()
        .get("wordcount")
        .await
        .expect("the app's StatefulSet");
    assert_eq!(
        sts.spec.and_then(|s| s.replicas),
        Some(2),
        "the app never went down"
    );

    let lease = op_ns
        .api::<Lease>()
        .get(&release.name)
        .await
        .expect("the leader-election Lease");
    assert_eq!(
        lease.spec.and_then(|s| s.holder_identity),
        Some(format!("{}-test", release.name))
    );
}

#[tokio::test]
async fn namespaced_mode_install_grants_what_the_operator_needs_where_it_watches() {
    let client = client().await;
    install_crd(&client).await;
    let op_ns = restricted_namespace(&client, "chart-ns-op").await;
    let app_ns = TestNamespace::new(&client, "chart-ns-app").await;
    let other_ns = TestNamespace::new(&client, "chart-ns-other").await;
    let release = Release::install(
        &op_ns.name,
        &[
            format!("watchNamespaces={{{}}}", app_ns.name),
            "reset.allowStateWipe=true".into(),
        ],
    );
    wait_available(&op_ns, &release.name).await;

    let user = release.service_account();
    let mut allowed = APP_RIGHTS.to_vec();
    allowed.extend([
        ("get", "secrets"),
        ("get", "storageclasses.storage.k8s.io"),
        // reset.allowStateWipe: a reset may delete the app's state claims, here only.
        ("delete", "persistentvolumeclaims"),
    ]);
    let never: Vec<(&str, &str)> = NEVER
        .iter()
        .copied()
        .filter(|r| *r != ("delete", "persistentvolumeclaims"))
        .collect();
    assert_rights(&user, Some(&app_ns.name), &allowed, &never);
    let mut denied: Vec<(&str, &str)> = APP_RIGHTS.to_vec();
    denied.push(("get", "secrets"));
    assert_rights(&user, Some(&other_ns.name), &[], &denied);
    assert_rights(
        &user,
        None,
        &[
            ("get", "nodes"),
            ("list", "nodes"),
            ("get", "persistentvolumes"),
        ],
        &[
            ("list", "streamapps.kstreams.dev"),
            ("watch", "pods"),
            ("get", "secrets"),
            ("watch", "nodes"),
            ("list", "persistentvolumes"),
        ],
    );
    assert_lease_rights(&release);

    // For real: the operator as the Deployment runs it; the watched namespace comes from the
    // Deployment's KSTREAMS_NAMESPACES.
    // Kafka checks off, as above.
    let operator = OperatorAs::start(
        &release,
        &op_ns,
        &["--leader-election=false", "--kafka-refresh-seconds=0"],
    )
    .await;
    let app = streamapp("wordcount", &input_topic().await, json!({}));
    app_becomes_ready(&app_ns, app, &operator).await;

    // `get secrets` works here: a missing Secret is reported as such (a 403 would not be).
    let app = streamapp(
        "needs-credentials",
        &input_topic().await,
        json!({"sasl": {"mechanism": "SCRAM-SHA-512", "secretName": "absent"}}),
    );
    ns_create(&app_ns, &app).await;
    wait_for(
        &app_ns.api::<StreamApp>(),
        "needs-credentials",
        "Degraded=True with reason SecretNotFound",
        LONG,
        |a: &StreamApp| {
            a.status.as_ref().is_some_and(|s| {
                s.conditions.iter().any(|c| {
                    c.type_ == "Degraded" && c.status == "True" && c.reason == "SecretNotFound"
                })
            })
        },
    )
    .await;
}

async fn ns_create(ns: &TestNamespace, app: &StreamApp) {
    ns.api::<StreamApp>()
        .create(&PostParams::default(), app)
        .await
        .expect("creating the StreamApp");
}
