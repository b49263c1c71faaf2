//! The image and the chart agree (issue 20). Nothing here needs a container engine: the
//! Containerfile's runtime stage is read as text, the chart is rendered by the real helm, and
//! the settings the image would start with are loaded by the engine's own config code. They
//! must name the same data directory, helm binary, ports, user and `serve` argument, and every
//! path the engine writes must be on a writable volume under the chart's read-only root.
//! (`scripts/check-image-context.sh` checks the build stage.)

use crate::chart::{find, render};
use crate::chart_hardening::env_value;
use crate::peers::find_binary;
use coordination_engine::config::{self, DEFAULT_CONFIG_FILE, Sources};
use serde_json::Value;
use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};

/// What the image's last stage declares.
#[derive(Debug, Default)]
struct RuntimeStage {
    env: HashMap<String, String>,
    /// `uid:gid` as written.
    user: String,
    expose: BTreeSet<u16>,
    entrypoint: Vec<String>,
    cmd: Vec<String>,
    workdir: String,
    copies: Vec<Copy>,
}

#[derive(Debug)]
struct Copy {
    source: String,
    dest: String,
    /// `--from=<stage>`: from an earlier stage, else from the build context.
    from_stage: Option<String>,
    chown: Option<String>,
}

impl RuntimeStage {
    fn read() -> Self {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("Containerfile");
        let text = std::fs::read_to_string(path).expect("Containerfile");
        let instructions = instructions(&text);
        let last_from = instructions
            .iter()
            .rposition(|(keyword, _)| keyword == "FROM")
            .expect("a FROM");
        let mut stage = RuntimeStage::default();
        for (keyword, args) in &instructions[last_from + 1..] {
            match keyword.as_str() {
                "ENV" => {
                    for pair in args.split_whitespace() {
                        let (name, value) = pair.split_once('=').expect("ENV name=value");
                        stage.env.insert(name.into(), value.into());
                    }
                }
                "USER" => stage.user = args.clone(),
                "EXPOSE" => stage.expose.extend(
                    args.split_whitespace()
                        .map(|p| p.parse::<u16>().expect("port")),
                ),
                "ENTRYPOINT" => stage.entrypoint = exec_form(args),
                "CMD" => stage.cmd = exec_form(args),
                "WORKDIR" => stage.workdir = args.clone(),
                "COPY" => stage.copies.push(Copy::parse(args)),
                _ => {}
            }
        }
        stage
    }

    fn copy_to(&self, dest: &str) -> &Copy {
        self.copies
            .iter()
            .find(|c| c.dest == dest)
            .unwrap_or_else(|| panic!("the runtime stage copies nothing to {dest}"))
    }

    fn uid_gid(&self) -> (i64, i64) {
        let (uid, gid) = self.user.split_once(':').expect("USER uid:gid");
        (
            uid.parse().expect("a numeric uid"),
            gid.parse().expect("a numeric gid"),
        )
    }
}

impl Copy {
    fn parse(args: &str) -> Self {
        let mut from_stage = None;
        let mut chown = None;
        let mut paths = Vec::new();
        for word in args.split_whitespace() {
            if let Some(stage) = word.strip_prefix("--from=") {
                from_stage = Some(stage.to_string());
            } else if let Some(owner) = word.strip_prefix("--chown=") {
                chown = Some(owner.to_string());
            } else {
                paths.push(word.to_string());
            }
        }
        assert_eq!(paths.len(), 2, "COPY {args}: one source, one destination");
        Copy {
            source: paths[0].clone(),
            dest: paths[1].clone(),
            from_stage,
            chown,
        }
    }
}

/// `(KEYWORD, arguments)`, comment lines dropped and continuation lines joined, as a builder
/// reads them.
fn instructions(text: &str) -> Vec<(String, String)> {
    let mut joined = Vec::new();
    let mut pending = String::new();
    for line in text.lines() {
        if line.trim_start().starts_with('#') {
            continue;
        }
        match line.trim_end().strip_suffix('\\') {
            Some(head) => {
                pending.push_str(head);
                pending.push(' ');
            }
            None => {
                pending.push_str(line);
                if !pending.trim().is_empty() {
                    joined.push(std::mem::take(&mut pending));
                }
                pending.clear();
            }
        }
    }
    joined
        .iter()
        .map(|line| {
            let line = line.trim();
            let (keyword, args) = line.split_once(char::is_whitespace).unwrap_or((line, ""));
            (keyword.to_uppercase(), args.trim().to_string())
        })
        .collect()
}

fn exec_form(args: &str) -> Vec<String> {
    serde_json::from_str(args).unwrap_or_else(|e| panic!("{args}: not the exec (JSON) form: {e}"))
}

/// Whether `path` is on one of the mounts, and which.
fn mount_of<'a>(mounts: &'a [Value], path: &str) -> Option<&'a Value> {
    mounts.iter().find(|m| {
        let at = m["mountPath"].as_str().expect("mountPath");
        path == at || path.starts_with(&format!("{}/", at.trim_end_matches('/')))
    })
}

#[test]
fn the_image_starts_serving_on_its_exposed_ports_with_its_own_settings() {
    let image = RuntimeStage::read();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));

    // The file the engine reads relative to its working directory is where the image puts it.
    let shipped = format!(
        "{}/{DEFAULT_CONFIG_FILE}",
        image.workdir.trim_end_matches('/')
    );
    let copy = image.copy_to(&shipped);
    assert_eq!(
        (copy.source.as_str(), &copy.from_stage),
        (DEFAULT_CONFIG_FILE, &None)
    );

    // `podman run` with nothing else: the shipped defaults under the image's environment.
    let settings = config::load(&Sources {
        files: vec![(root.join(DEFAULT_CONFIG_FILE), true)],
        env: image.env.clone(),
    })
    .expect("the image's settings load");
    assert_eq!(
        BTreeSet::from([settings.port, settings.metrics_port]),
        image.expose,
        "EXPOSE lists the API and metrics ports the engine listens on"
    );
    assert_eq!(settings.data_dir, PathBuf::from(&image.env["DATA_DIR"]));
    assert_eq!(
        settings.channels.helm_bin,
        Some(PathBuf::from(&image.env["HELM_BIN"]))
    );

    // The binaries are where the entrypoint and HELM_BIN say, from the stages that build them.
    assert_eq!(
        image.copy_to(&image.entrypoint[0]).from_stage.as_deref(),
        Some("build")
    );
    assert_eq!(
        image.copy_to(&image.env["HELM_BIN"]).from_stage.as_deref(),
        Some("helm")
    );

    // A numeric, non-root user (the kubelet can only check runAsNonRoot against a number) that
    // owns the data directory.
    let (uid, gid) = image.uid_gid();
    assert!(uid > 0 && gid > 0, "USER {}", image.user);
    assert_eq!(
        image.copy_to(&image.env["DATA_DIR"]).chown.as_deref(),
        Some(image.user.as_str())
    );

    // The default command is a subcommand the binary really has.
    assert_eq!(image.cmd, ["serve"]);
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_coordination-engine"))
        .args(&image.cmd)
        .arg("--help")
        .output()
        .expect("run the binary");
    assert!(
        output.status.success(),
        "`{} --help`: {}",
        image.cmd.join(" "),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// The https and metrics containerPorts, and PORT/METRICS_PORT, are the image's EXPOSE.
fn assert_ports_are_the_exposed_ones(
    values: &str,
    docs: &[Value],
    container: &Value,
    image: &RuntimeStage,
) {
    let ports: BTreeSet<u16> = container["ports"]
        .as_array()
        .expect("ports")
        .iter()
        .filter(|p| p["name"] == "https" || p["name"] == "metrics")
        .map(|p| p["containerPort"].as_u64().expect("containerPort") as u16)
        .collect();
    assert_eq!(ports, image.expose, "{values}: containerPorts vs EXPOSE");
    let by_env: BTreeSet<u16> = ["PORT", "METRICS_PORT"]
        .iter()
        .map(|name| env_value(docs, name).expect(name).parse().expect("a port"))
        .collect();
    assert_eq!(
        by_env, image.expose,
        "{values}: PORT/METRICS_PORT vs EXPOSE"
    );
}

/// The root is read-only; each path the image declares for writes is on a writable mount.
fn assert_writes_land_on_volumes(
    values: &str,
    container: &Value,
    pod: &Value,
    image: &RuntimeStage,
) {
    assert_eq!(
        container["securityContext"]["readOnlyRootFilesystem"], true,
        "{values}"
    );
    let mounts = container["volumeMounts"].as_array().expect("volumeMounts");
    let volumes = pod["volumes"].as_array().expect("volumes");
    for name in [
        "DATA_DIR",
        "HELM_CACHE_HOME",
        "HELM_CONFIG_HOME",
        "HELM_DATA_HOME",
    ] {
        let path = &image.env[name];
        let mount = mount_of(mounts, path)
            .unwrap_or_else(|| panic!("{values}: {name}={path} is on the read-only root"));
        assert_ne!(mount["readOnly"], true, "{values}: {name}={path}");
    }
    let tmp = mount_of(mounts, "/tmp").expect("a volume on /tmp");
    let tmp_volume = volumes
        .iter()
        .find(|v| v["name"] == tmp["name"])
        .expect("the /tmp volume");
    assert!(
        tmp_volume["emptyDir"].is_object(),
        "{values}: /tmp is an emptyDir"
    );
}

#[test]
fn the_chart_runs_the_image_with_the_paths_ports_and_user_it_declares() {
    let Some(helm) = find_binary("HELM_BIN", &["helm"]) else {
        return;
    };
    let image = RuntimeStage::read();
    let (uid, gid) = image.uid_gid();
    for values in ["values.yaml", "values-ocp-4.20.yaml"] {
        let docs = render(&helm, values, &[]);
        let pod = &find(&docs, "Deployment")[0]["spec"]["template"]["spec"];
        let container = &pod["containers"][0];

        // No command: the image's ENTRYPOINT runs, with the chart's args for its CMD.
        assert!(
            container["command"].is_null(),
            "{values}: command overrides the entrypoint"
        );
        assert_eq!(container["args"], serde_json::json!(image.cmd), "{values}");

        for name in ["DATA_DIR", "HELM_BIN"] {
            assert_eq!(
                env_value(&docs, name).as_deref(),
                Some(image.env[name].as_str()),
                "{values}: {name}"
            );
        }

        assert_ports_are_the_exposed_ones(values, &docs, container, &image);

        // A read-only root: whatever the engine and helm write is on a writable volume, and
        // helm's homes under /tmp are on an emptyDir.
        assert_writes_land_on_volumes(values, container, pod, &image);

        let security = &container["securityContext"];
        // Non-root: Kubernetes runs the image's own user; OpenShift's SCC picks the UID (the
        // chart then leaves it unset and the data directory is a volume, writable by fsGroup).
        assert_eq!(security["runAsNonRoot"], true, "{values}");
        let pod_security = &pod["securityContext"];
        assert_eq!(pod_security["runAsNonRoot"], true, "{values}");
        if values == "values.yaml" {
            assert_eq!(
                pod_security["runAsUser"], uid,
                "{values}: runAsUser vs USER"
            );
            assert_eq!(
                pod_security["runAsGroup"], gid,
                "{values}: runAsGroup vs USER"
            );
            assert_eq!(pod_security["fsGroup"], gid, "{values}: fsGroup vs USER");
        } else {
            assert!(
                pod_security["runAsUser"].is_null(),
                "{values}: the SCC assigns the UID"
            );
        }
    }
}

#[test]
fn every_openshift_values_file_names_the_tag_that_install_md_pushes() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let chart_dir = root.join(crate::chart::CHART);
    let yaml = |path: &Path| -> Value {
        serde_saphyr::from_str(&std::fs::read_to_string(path).expect("read")).expect("yaml")
    };
    let app_version = yaml(&chart_dir.join("Chart.yaml"))["appVersion"]
        .as_str()
        .expect("appVersion")
        .to_string();
    // values.yaml defaults to the appVersion: the plain `$VERSION` tag.
    assert_eq!(yaml(&chart_dir.join("values.yaml"))["image"]["tag"], "");
    let install = std::fs::read_to_string(root.join("docs/install.md")).expect("install.md");
    let mut versions = Vec::new();
    for entry in std::fs::read_dir(&chart_dir).expect("chart dir") {
        let name = entry
            .expect("entry")
            .file_name()
            .into_string()
            .expect("utf-8");
        let Some(ocp) = name
            .strip_prefix("values-ocp-")
            .and_then(|rest| rest.strip_suffix(".yaml"))
        else {
            continue;
        };
        let tag = yaml(&chart_dir.join(&name))["image"]["tag"].clone();
        assert_eq!(tag, format!("{app_version}-ocp-{ocp}"), "{name}");
        for pushed in [format!("\"$VERSION\"-ocp-{ocp}"), format!("ocp-{ocp}")] {
            assert!(
                install.contains(&pushed),
                "docs/install.md pushes no {pushed}"
            );
        }
        versions.push(ocp.to_string());
    }
    assert!(
        !versions.is_empty(),
        "no values-ocp-*.yaml in {}",
        chart_dir.display()
    );
}
