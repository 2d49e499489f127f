"""What `sam deploy` would send, checked offline.

`sam validate --lint` lints the SAM template before the transform, and cfn-lint skips some
checks (circular dependencies among others) on AWS::Serverless::* resources. CloudFormation
receives the template after the transform. This script does what `sam deploy` does to
template.yaml (packages each CodeUri as an S3 object, runs the SAM translator the SAM CLI
uses), writes the result, lints it with cfn-lint and then checks the rules below, each a
problem found once in this project that a deploy would not report or would only report late:

- routes: API Gateway HTTP APIs create no route whose path ends in "/" (the integration is
  created, the route silently is not);
- dead letters: every stream or queue event source sends what exhausts its retries to an
  on-failure destination, and a bounded record age keeps that time finite;
- secrets: no function environment holds a secret value (SIGNING_SECRET, JWT_SECRET);
- reserved concurrency is only ever set under a condition (new accounts have small quotas);
- logs: every function logs to a log group of the stack that has a retention;
- alarms: function errors and throttles, stream iterator age, each dead-letter queue and API
  5xx have an alarm that notifies the stack's alarm topic;
- the table has deletion protection; the HTTP API writes access logs that hold no raw path;
- no SAM build metadata key that SAM does not read (BuildInSource).

Usage: check.py TEMPLATE OUT_JSON   (exit 1 with a list of problems, 0 when clean)
       check.py --self-test TEMPLATE  (breaks the template in each of those ways, in memory,
                                       and fails unless each break is caught)
"""

import json
import logging
import os
import subprocess
import sys

from samtranslator.translator.transform import transform
from samtranslator.yaml_helper import yaml_parse


logging.disable(logging.WARNING)  # the translator's own metrics chatter


class OfflinePolicies:
    """The translator asks IAM for managed policy ARNs only for policies named by name;
    this template uses inline statements and SAM policy templates, so nothing is looked up."""

    def load(self):
        return {}


def translate(path=None, tpl=None):
    if tpl is None:
        with open(path) as f:
            tpl = yaml_parse(f.read())
    # What `sam package` does before the transform: each local CodeUri becomes an S3 object.
    for name, res in tpl.get("Resources", {}).items():
        if res.get("Type") == "AWS::Serverless::Function":
            res.setdefault("Properties", {})["CodeUri"] = "s3://rollcall-artifacts/%s.zip" % name
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    params = {"AWS::Region": "us-east-1", "AWS::AccountId": "123456789012", "AWS::Partition": "aws"}
    return tpl, transform(tpl, params, OfflinePolicies())


def refs(node):
    """Every logical id that node refers to (Ref, GetAtt, Sub)."""
    out = set()
    if isinstance(node, dict):
        for k, v in node.items():
            if k == "Ref" and isinstance(v, str):
                out.add(v)
            elif k == "Fn::GetAtt":
                out.add(v[0] if isinstance(v, list) else v.split(".")[0])
            elif k == "Fn::Sub":
                s = v[0] if isinstance(v, list) else v
                import re

                for m in re.findall(r"\$\{([A-Za-z0-9]+)(?:\.[A-Za-z]+)?\}", s):
                    out.add(m)
                if isinstance(v, list):
                    out |= refs(v[1])
            else:
                out |= refs(v)
    elif isinstance(node, list):
        for v in node:
            out |= refs(v)
    return out


def check(sam_tpl, cfn):
    problems = []
    res = cfn["Resources"]
    by_type = {}
    for name, r in res.items():
        by_type.setdefault(r["Type"], []).append(name)
    functions = by_type.get("AWS::Lambda::Function", [])

    # Routes that API Gateway would not create.
    for name, r in sam_tpl.get("Resources", {}).items():
        for ev_name, ev in (r.get("Properties", {}).get("Events") or {}).items():
            if ev.get("Type") != "HttpApi":
                continue
            p = ev.get("Properties", {}).get("Path", "")
            if isinstance(p, str) and len(p) > 1 and p.endswith("/"):
                problems.append(
                    "%s.%s: route path %r ends in '/': API Gateway HTTP APIs create no such route "
                    "(declare it without the slash; requests with the slash still reach it)" % (name, ev_name, p)
                )
    for name in by_type.get("AWS::ApiGatewayV2::Api", []):
        for path in (res[name].get("Properties", {}).get("Body", {}).get("paths") or {}):
            if len(path) > 1 and path.endswith("/"):
                problems.append("%s: OpenAPI body has path %r ending in '/'" % (name, path))

    # Dead letters on every stream and queue event source.
    for name in by_type.get("AWS::Lambda::EventSourceMapping", []):
        p = res[name]["Properties"]
        is_stream = "StartingPosition" in p
        dest = ((p.get("DestinationConfig") or {}).get("OnFailure") or {}).get("Destination")
        if is_stream and not dest:
            problems.append("%s: stream event source without DestinationConfig.OnFailure: records that "
                            "exhaust their retries are dropped" % name)
        if is_stream and not p.get("MaximumRecordAgeInSeconds"):
            problems.append("%s: stream event source without MaximumRecordAgeInSeconds" % name)
    for name in by_type.get("AWS::SQS::Queue", []):
        q = res[name]["Properties"]
        if "RedrivePolicy" not in q and not any(
            refs(res[o]["Properties"].get("RedrivePolicy", {})) & {name} for o in by_type.get("AWS::SQS::Queue", [])
        ):
            # a queue that is nobody's dead-letter queue and has none itself
            if not any(name in refs(res[m]["Properties"].get("DestinationConfig", {}))
                       for m in by_type.get("AWS::Lambda::EventSourceMapping", [])):
                problems.append("%s: queue without a RedrivePolicy (dead-letter queue)" % name)

    # Secrets never in plain environment variables.
    for name in functions:
        env = ((res[name]["Properties"].get("Environment") or {}).get("Variables") or {})
        for k in env:
            if k in ("SIGNING_SECRET", "JWT_SECRET"):
                problems.append("%s: environment variable %s holds a secret in plain text "
                                "(use Secrets Manager)" % (name, k))
        for k, v in env.items():
            for ref in refs(v):
                param = cfn.get("Parameters", {}).get(ref)
                if param and param.get("NoEcho"):
                    problems.append("%s: environment variable %s holds the NoEcho parameter %s" % (name, k, ref))

    # Reserved concurrency only under a condition.
    for name in functions:
        rc = res[name]["Properties"].get("ReservedConcurrentExecutions")
        if rc is not None and not (isinstance(rc, dict) and "Fn::If" in rc):
            problems.append("%s: ReservedConcurrentExecutions is set unconditionally: stack creation fails "
                            "on accounts whose concurrency quota is small" % name)

    # Log groups with retention.
    groups = {g: res[g]["Properties"] for g in by_type.get("AWS::Logs::LogGroup", [])}
    for name in functions:
        lc = res[name]["Properties"].get("LoggingConfig") or {}
        target = refs(lc.get("LogGroup", {}))
        if not target or not (target & set(groups)):
            problems.append("%s: no LoggingConfig.LogGroup of the stack (logs would never expire)" % name)
        elif not any(groups[g].get("RetentionInDays") for g in target & set(groups)):
            problems.append("%s: its log group has no RetentionInDays" % name)

    # Alarms.
    alarms = [res[a]["Properties"] for a in by_type.get("AWS::CloudWatch::Alarm", [])]
    topics = set(by_type.get("AWS::SNS::Topic", []))

    def alarmed(metric, dims_ref=None, namespace=None):
        for a in alarms:
            if not (refs(a.get("AlarmActions", [])) & topics):
                continue
            metrics = [a] + [(m.get("MetricStat") or {}).get("Metric", {}) for m in a.get("Metrics", [])]
            for m in metrics:
                if m.get("MetricName") != metric:
                    continue
                if namespace and m.get("Namespace") != namespace:
                    continue
                if dims_ref is None or dims_ref in refs(m.get("Dimensions", [])):
                    return True
        return False

    for name in functions:
        for metric in ("Errors", "Throttles"):
            if not alarmed(metric, name, "AWS/Lambda"):
                problems.append("%s: no alarm on %s to the alarm topic" % (name, metric))
    for name in by_type.get("AWS::Lambda::EventSourceMapping", []):
        p = res[name]["Properties"]
        if "StartingPosition" in p:
            fn = refs(p.get("FunctionName"))
            if not any(alarmed("IteratorAge", f, "AWS/Lambda") for f in fn):
                problems.append("%s: no IteratorAge alarm on its function" % name)
        dest = refs(((p.get("DestinationConfig") or {}).get("OnFailure") or {}).get("Destination", {}))
        for q in dest:
            if not alarmed("ApproximateNumberOfMessagesVisible", q, "AWS/SQS"):
                problems.append("%s: no alarm on its dead-letter queue %s" % (name, q))
    for name in by_type.get("AWS::ApiGatewayV2::Api", []):
        if not alarmed("5xx", name, "AWS/ApiGateway"):
            problems.append("%s: no alarm on API 5xx" % name)
    if not topics:
        problems.append("no SNS topic for alarms")

    # Table and API.
    for name in by_type.get("AWS::DynamoDB::Table", []):
        if res[name]["Properties"].get("DeletionProtectionEnabled") is not True:
            problems.append("%s: DeletionProtectionEnabled is not true" % name)
    for name in by_type.get("AWS::ApiGatewayV2::Stage", []):
        als = res[name]["Properties"].get("AccessLogSettings")
        if not als:
            problems.append("%s: HTTP API stage without access logs" % name)
        elif "$context.path" in json.dumps(als.get("Format", "")):
            problems.append("%s: access log format holds $context.path (invitation tokens are path values)" % name)

    # Build metadata SAM does not read.
    for name, r in sam_tpl.get("Resources", {}).items():
        if "BuildInSource" in (r.get("Metadata") or {}):
            problems.append("%s: Metadata.BuildInSource is not a key SAM reads (use build_in_source in "
                            "samconfig.toml)" % name)
    return problems


def lint(path):
    return subprocess.run([os.path.join(os.path.dirname(sys.executable), "cfn-lint"), path],
                          capture_output=True, text=True)


def self_test(path):
    """Each break must be caught, by the rules above or by cfn-lint on the transformed template."""
    import copy
    import tempfile

    with open(path) as f:
        base = yaml_parse(f.read())
    res = lambda t: t["Resources"]  # noqa: E731

    def fn_with_event(t, kind):
        for name, r in res(t).items():
            for ev in (r.get("Properties", {}).get("Events") or {}).values():
                if ev.get("Type") == kind:
                    return name, ev
        raise AssertionError("no %s event in the template" % kind)

    def add_env(t, k, v):
        t["Globals"]["Function"].setdefault("Environment", {}).setdefault("Variables", {})[k] = v

    breaks = {
        "a route ending in /": lambda t: fn_with_event(t, "HttpApi")[1]["Properties"].__setitem__(
            "Path", fn_with_event(t, "HttpApi")[1]["Properties"]["Path"] + "/"),
        "a stream without dead letters": lambda t: fn_with_event(t, "DynamoDB")[1]["Properties"].pop(
            "DestinationConfig", None) or fn_with_event(t, "DynamoDB")[1]["Properties"].pop("MaximumRecordAgeInSeconds", None),
        "fixed reserved concurrency": lambda t: res(t)[fn_with_event(t, "DynamoDB")[0]]["Properties"].__setitem__(
            "ReservedConcurrentExecutions", 2),
        "a secret in the environment": lambda t: add_env(t, "SIGNING_SECRET", "plain-text-secret-0123456789abcdef"),
        "a function without a log group": lambda t: res(t)[fn_with_event(t, "HttpApi")[0]]["Properties"].pop("LoggingConfig"),
        "no error alarm": lambda t: [res(t).pop(n) for n in list(res(t)) if res(t)[n].get("Type") == "AWS::CloudWatch::Alarm"
                                     and "Errors" in json.dumps(res(t)[n])],
        "a table without deletion protection": lambda t: [r["Properties"].__setitem__("DeletionProtectionEnabled", False)
                                                          for r in res(t).values() if r["Type"] == "AWS::DynamoDB::Table"],
        "Metadata.BuildInSource": lambda t: res(t)[fn_with_event(t, "HttpApi")[0]].setdefault("Metadata", {}).__setitem__(
            "BuildInSource", True),
        "no access logs": lambda t: [r["Properties"].pop("AccessLogSettings", None)
                                     for r in res(t).values() if r["Type"] == "AWS::Serverless::HttpApi"],
        "the API's URL in every function (a circular dependency)": lambda t: add_env(
            t, "PUBLIC_BASE_URL", {"Fn::Sub": "https://${HttpApi}.execute-api.${AWS::Region}.${AWS::URLSuffix}"}),
    }
    def lint_codes(cfn):
        with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
            json.dump(cfn, f, default=str)
        out = lint(f.name)
        os.unlink(f.name)
        return {ln.split(" ")[0] + " " + ln for ln in out.stdout.splitlines() if ln[:1] in "EW" and ln[1:2].isdigit()}

    sam_tpl, cfn = translate(tpl=copy.deepcopy(base))
    known = set(check(sam_tpl, cfn))
    known_lint = lint_codes(cfn)
    failed = 0
    for what, brk in breaks.items():
        t = copy.deepcopy(base)
        brk(t)
        sam_tpl, cfn = translate(tpl=t)
        problems = [p for p in check(sam_tpl, cfn) if p not in known]
        caught = bool(problems)
        how = problems[0] if problems else ""
        if not caught:
            new = sorted(lint_codes(cfn) - known_lint)
            caught = bool(new)
            how = new[0] if new else ""
        print("deploy check self-test: %-58s %s" % (what, ("caught: " + how[:90]) if caught else "NOT CAUGHT"))
        failed += not caught
    return 1 if failed else 0


def main():
    if len(sys.argv) == 3 and sys.argv[1] == "--self-test":
        return self_test(sys.argv[2])
    if len(sys.argv) != 3:
        print(__doc__)
        return 2
    sam_tpl, cfn = translate(sys.argv[1])
    with open(sys.argv[2], "w") as f:
        json.dump(cfn, f, indent=1, default=str)
    lint = subprocess.run([os.path.join(os.path.dirname(sys.executable), "cfn-lint"), sys.argv[2]])
    problems = check(sam_tpl, cfn)
    for p in problems:
        print("deploy check: " + p)
    if lint.returncode != 0:
        print("deploy check: cfn-lint found problems in the transformed template (above)")
    if problems or lint.returncode != 0:
        return 1
    n = len(cfn["Resources"])
    print("deploy check: transformed template (%d resources) lints clean; no known deploy problem" % n)
    return 0


if __name__ == "__main__":
    sys.exit(main())
