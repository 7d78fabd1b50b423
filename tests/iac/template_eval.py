"""template.yaml evaluated for given parameter values: its conditions resolved, its intrinsic functions
computed, as CloudFormation would for a stack in ACCOUNT/REGION named STACK."""

from __future__ import annotations

import re
from typing import Any

from .conftest import ACCOUNT, REGION, STACK, _plain, load_template

PSEUDO = {
    "AWS::AccountId": ACCOUNT,
    "AWS::Region": REGION,
    "AWS::StackName": STACK,
    "AWS::Partition": "aws",
    "AWS::URLSuffix": "amazonaws.com",
}


class Evaluator:
    """Evaluates the intrinsic functions of a transformed template for given parameter values
    (defaults unless overridden). References to resources become "<LogicalId>" / "<LogicalId.Attr>"."""

    def __init__(self, template: dict[str, Any], **overrides: str) -> None:
        self.template = template
        self.values: dict[str, Any] = dict(PSEUDO)
        for name, spec in template.get("Parameters", {}).items():
            self.values[name] = str(spec.get("Default", ""))
        self.values.update(overrides)
        self.conditions: dict[str, bool] = {}
        for name, expr in template.get("Conditions", {}).items():
            self.conditions[name] = bool(self(expr))

    def _ref(self, name: str) -> str | None:
        if name == "AWS::NoValue":
            return None
        return str(self.values[name]) if name in self.values else f"<{name}>"

    def _getatt(self, target: str | list[str]) -> str:
        return f"<{target if isinstance(target, str) else '.'.join(target)}>"

    def __call__(self, node: Any) -> Any:
        if isinstance(node, list):
            # CloudFormation drops AWS::NoValue from a list.
            return [value for value in map(self, node) if value is not None]
        if not isinstance(node, dict):
            return node
        if len(node) != 1:
            return {k: self(v) for k, v in node.items()}
        ((fn, arg),) = node.items()
        if fn == "Ref":
            return self._ref(arg)
        if fn == "Fn::GetAtt":
            return self._getatt(arg)
        if fn == "Fn::Sub":
            text, extra = (arg, {}) if isinstance(arg, str) else (arg[0], self(arg[1]))

            def repl(m: re.Match[str]) -> str:
                name = m.group(1)
                if name in extra:
                    return str(extra[name])
                return self._getatt(name) if "." in name and name not in self.values else self._ref(name)

            return re.sub(r"\$\{([^}!]+)\}", repl, text)
        if fn == "Fn::If":
            cond, yes, no = arg
            return self(yes if self.conditions[cond] else no)
        if fn == "Fn::Equals":
            a, b = self(arg)
            return a == b
        if fn == "Fn::Not":
            return not self(arg[0])
        if fn == "Fn::And":
            return all(self(arg))
        if fn == "Fn::Or":
            return any(self(arg))
        if fn == "Condition":
            return self.conditions[arg]
        if fn == "Fn::Join":
            sep, parts = arg
            return sep.join(str(p) for p in self(parts))
        if fn == "Fn::Split":
            sep, text = arg
            return str(self(text)).split(sep)
        if fn == "Fn::Select":
            index, items = arg
            return self(items)[int(index)]
        if fn == "Fn::FindInMap":
            m, k1, k2 = self(arg)
            return self.template["Mappings"][m][str(k1)][k2]
        return {fn: self(arg)}


def plain_template() -> dict[str, Any]:
    """template.yaml as plain dicts and lists, before the SAM transform."""
    return dict(_plain(load_template()))
