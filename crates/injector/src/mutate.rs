//! The change made to an annotated pod: either a `kar` container beside the
//! component's containers, or the component's own container started under `kar run`.
//! Every container of the pod gets `KAR_APP`, `KAR_APP_PORT` and `KAR_RUNTIME_PORT`.

use crate::annotations::{KarAnnotations, INJECTED};
use crate::config::{InjectorConfig, CONFIG_VOLUME};
use k8s_openapi::api::core::v1::{
    Container, ContainerPort, EnvVar, HTTPGetAction, Lifecycle, LifecycleHandler, Pod, Probe,
    SecretVolumeSource, Volume, VolumeMount,
};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

pub const HEALTH_PATH: &str = "/kar/v1/system/health";
pub const SHUTDOWN_PATH: &str = "/kar/v1/system/shutdown";

/// Whether the injector already changed this pod (its annotation, or a container of
/// the sidecar's name): re-invocations and re-submitted pods are left alone.
pub fn already_injected(pod: &Pod, config: &InjectorConfig) -> bool {
    let marked = pod
        .metadata
        .annotations
        .as_ref()
        .is_some_and(|a| a.contains_key(INJECTED));
    let has_sidecar = pod
        .spec
        .as_ref()
        .is_some_and(|s| s.containers.iter().any(|c| c.name == config.sidecar_name));
    marked || has_sidecar
}

/// The pod with kar injected as `kar` asks.
pub fn inject(pod: &Pod, kar: &KarAnnotations, config: &InjectorConfig) -> Pod {
    let mut pod = pod.clone();
    let mode = if kar.sidecar_container {
        "sidecar"
    } else {
        "container"
    };
    pod.metadata
        .annotations
        .get_or_insert_with(Default::default)
        .insert(INJECTED.to_string(), mode.to_string());
    let spec = pod.spec.get_or_insert_with(Default::default);

    let volumes = spec.volumes.get_or_insert_with(Vec::new);
    if !volumes.iter().any(|v| v.name == CONFIG_VOLUME) {
        volumes.push(Volume {
            name: CONFIG_VOLUME.to_string(),
            secret: Some(SecretVolumeSource {
                secret_name: Some(config.secret_name.clone()),
                ..Default::default()
            }),
            ..Default::default()
        });
    }

    for container in &mut spec.containers {
        add_env(container, "KAR_APP", &kar.app);
        add_env(container, "KAR_APP_PORT", &kar.app_port.to_string());
        add_env(container, "KAR_RUNTIME_PORT", &kar.runtime_port.to_string());
    }

    let flags = kar.run_flags(&config.config_dir);
    if kar.sidecar_container {
        let mut args = vec!["run".to_string(), "-app".to_string(), kar.app.clone()];
        args.extend(flags);
        let mut sidecar = Container {
            name: config.sidecar_name.clone(),
            image: Some(config.sidecar_image.clone()),
            image_pull_policy: Some(config.image_pull_policy.clone()),
            args: Some(args),
            ports: Some(vec![ContainerPort {
                name: Some("kar-runtime".to_string()),
                container_port: i32::from(kar.runtime_port),
                ..Default::default()
            }]),
            ..Default::default()
        };
        mount_config(&mut sidecar, config);
        add_probes(&mut sidecar, kar.runtime_port);
        spec.containers.push(sidecar);
    } else if let Some(component) = spec.containers.first_mut() {
        mount_config(component, config);
        add_probes(component, kar.runtime_port);
        match component.command.take().filter(|c| !c.is_empty()) {
            // The command is known: run it under `kar run`.
            Some(command) => {
                let mut wrapped = vec![
                    config.kar_command.clone(),
                    "run".to_string(),
                    "-app".to_string(),
                    kar.app.clone(),
                ];
                wrapped.extend(flags);
                wrapped.push("--".to_string());
                wrapped.extend(command);
                wrapped.extend(component.args.take().unwrap_or_default());
                component.command = Some(wrapped);
            }
            // The image's entrypoint starts the component: like upstream's images,
            // it runs `kar run -app $KAR_APP $KAR_EXTRA_ARGS ...` when told to.
            None => {
                add_env(component, "KAR_SIDECAR_IN_CONTAINER", "true");
                add_env(component, "KAR_EXTRA_ARGS", &flags.join(" "));
            }
        }
    }
    pod
}

/// Adds a variable unless the container sets it already (its own value wins).
fn add_env(container: &mut Container, name: &str, value: &str) {
    let env = container.env.get_or_insert_with(Vec::new);
    if !env.iter().any(|e| e.name == name) {
        env.push(EnvVar {
            name: name.to_string(),
            value: Some(value.to_string()),
            ..Default::default()
        });
    }
}

fn mount_config(container: &mut Container, config: &InjectorConfig) {
    let mounts = container.volume_mounts.get_or_insert_with(Vec::new);
    if !mounts.iter().any(|m| m.name == CONFIG_VOLUME) {
        mounts.push(VolumeMount {
            name: CONFIG_VOLUME.to_string(),
            mount_path: config.config_dir.clone(),
            read_only: Some(true),
            ..Default::default()
        });
    }
}

/// The liveness probe on the health route and the preStop hook on the shutdown
/// route (upstream's), unless the container has its own.
fn add_probes(container: &mut Container, runtime_port: u16) {
    let get = |path: &str| HTTPGetAction {
        path: Some(path.to_string()),
        port: IntOrString::Int(i32::from(runtime_port)),
        scheme: Some("HTTP".to_string()),
        ..Default::default()
    };
    if container.liveness_probe.is_none() {
        container.liveness_probe = Some(Probe {
            http_get: Some(get(HEALTH_PATH)),
            initial_delay_seconds: Some(5),
            period_seconds: Some(10),
            failure_threshold: Some(3),
            ..Default::default()
        });
    }
    let lifecycle = container.lifecycle.get_or_insert_with(Lifecycle::default);
    if lifecycle.pre_stop.is_none() {
        lifecycle.pre_stop = Some(LifecycleHandler {
            http_get: Some(get(SHUTDOWN_PATH)),
            ..Default::default()
        });
    }
}
