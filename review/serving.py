"""What each environment serves, read generically from the templates' SageMaker resources:
endpoint configs' production variants (instance type and count, serverless memory, async),
the model each variant runs (its model package version), and the variant's autoscaling range
(`AWS::ApplicationAutoScaling::ScalableTarget` on `endpoint/<name>/variant/<variant>`)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from review.intrinsics import as_list, render

_PACKAGE_VERSION = re.compile(r"model-package/([^/$}]+)/(\d+)$")


@dataclass(frozen=True)
class Variant:
    stack: str  # construct path of the stack
    endpoint_config: str  # logical id
    name: str  # VariantName
    kind: str  # realtime | serverless | async
    instance_type: str | None
    initial_count: int
    min_capacity: int
    max_capacity: int
    serverless_memory_mb: int
    serverless_max_concurrency: int
    model: str  # the model package (group/version) or the model's artifact, as the template says

    def describe(self) -> str:
        if self.kind == "serverless":
            size = f"serverless {self.serverless_memory_mb} MB x {self.serverless_max_concurrency}"
        else:
            scale = (
                f"{self.min_capacity}-{self.max_capacity}"
                if (self.min_capacity, self.max_capacity) != (self.initial_count,) * 2
                else f"{self.initial_count}"
            )
            size = f"{self.kind} {scale} x {self.instance_type}"
        return f"{self.model} ({size})"


def variants(stack: str, template: dict[str, Any]) -> list[Variant]:
    resources = template.get("Resources") or {}
    models = {
        lid: r.get("Properties") or {}
        for lid, r in resources.items()
        if r.get("Type") == "AWS::SageMaker::Model"
    }
    model_names = {lid: render(p.get("ModelName", lid)) for lid, p in models.items()}
    targets = [
        r.get("Properties") or {}
        for r in resources.values()
        if r.get("Type") == "AWS::ApplicationAutoScaling::ScalableTarget"
        and (r.get("Properties") or {}).get("ServiceNamespace") == "sagemaker"
    ]
    # Which endpoint uses each endpoint config: its logical id and name, as a scalable target's
    # ResourceId (`endpoint/<name>/variant/<variant>`) renders them.
    config_names = {
        render((r.get("Properties") or {}).get("EndpointConfigName", lid)): lid
        for lid, r in resources.items()
        if r.get("Type") == "AWS::SageMaker::EndpointConfig"
    }
    users: dict[str, list[str]] = {}
    for elid, r in resources.items():
        if r.get("Type") == "AWS::SageMaker::Endpoint":
            props = r.get("Properties") or {}
            ref = props.get("EndpointConfigName")
            target = _target(ref) or config_names.get(render(ref))
            names = [f"${{{elid}.", f"${{{elid}}}"] + (
                [render(props["EndpointName"])] if "EndpointName" in props else []
            )
            users.setdefault(target or render(ref), []).extend(names)
    found = []
    for lid, resource in resources.items():
        if resource.get("Type") != "AWS::SageMaker::EndpointConfig":
            continue
        props = resource.get("Properties") or {}
        is_async = bool(props.get("AsyncInferenceConfig"))
        for raw in as_list(props.get("ProductionVariants")):
            if not isinstance(raw, dict):
                continue
            name = render(raw.get("VariantName", "AllTraffic"))
            serverless = raw.get("ServerlessConfig") or {}
            count = _int(raw.get("InitialInstanceCount"), 1 if not serverless else 0)
            low, high = count, count
            endpoint_names = users.get(lid, [])
            for target in targets:
                rid = render(target.get("ResourceId", ""))
                if f"variant/{name}" in rid and (not endpoint_names or any(n in rid for n in endpoint_names)):
                    low, high = _int(target.get("MinCapacity"), low), _int(target.get("MaxCapacity"), high)
            found.append(
                Variant(
                    stack=stack,
                    endpoint_config=lid,
                    name=name,
                    kind="serverless" if serverless else "async" if is_async else "realtime",
                    instance_type=render(raw["InstanceType"]) if "InstanceType" in raw else None,
                    initial_count=count,
                    min_capacity=low,
                    max_capacity=high,
                    serverless_memory_mb=_int(serverless.get("MemorySizeInMB"), 0),
                    serverless_max_concurrency=_int(serverless.get("MaxConcurrency"), 0),
                    model=_model(raw.get("ModelName"), models, model_names),
                )
            )
    return found


def _target(ref: Any) -> str | None:
    """The logical id a `Ref` or `Fn::GetAtt` points at."""
    if isinstance(ref, dict):
        if "Ref" in ref:
            return str(ref["Ref"])
        if "Fn::GetAtt" in ref:
            return str(as_list(ref["Fn::GetAtt"])[0]).split(".")[0]
    return None


def _model(ref: Any, models: dict[str, dict[str, Any]], names: dict[str, str]) -> str:
    """The model package (group vN) a variant's model runs, or what the template names."""
    target = _target(ref)
    if isinstance(ref, str):
        target = next((lid for lid, name in names.items() if name == ref), None)
    props = models.get(target or "")
    if props is None:
        return f"model {render(ref)}"
    containers = (
        [props["PrimaryContainer"]] if props.get("PrimaryContainer") else as_list(props.get("Containers"))
    )
    for container in containers:
        if isinstance(container, dict) and container.get("ModelPackageName") is not None:
            return package_label(render(container["ModelPackageName"]))
    for container in containers:
        if isinstance(container, dict) and container.get("ModelDataUrl") is not None:
            return f"artifact {render(container['ModelDataUrl'])}"
    return f"model {target}"


def package_label(arn: str) -> str:
    """`arn:...:model-package/mlops-prod-merchant-credit/3` -> `mlops-prod-merchant-credit v3`."""
    match = _PACKAGE_VERSION.search(arn)
    if match:
        return f"{match.group(1)} v{match.group(2)}"
    return f"package resolved at deploy time ({arn})" if "${" in arn else f"package {arn}"


def configured_version(raw_config: dict[str, Any] | None, environment: str) -> str | None:
    """The config's `model_package_version` for an environment, as a label (None: not in config)."""
    env = ((raw_config or {}).get("environments") or {}).get(environment)
    if not isinstance(env, dict) or "model_package_version" not in env:
        return None
    version = env["model_package_version"]
    return "latest approved" if version is None else f"v{version}"


def _int(value: Any, default: int) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else default
