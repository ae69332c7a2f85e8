"""GuardDuty action evidences: Kubernetes and AWS API calls, connections, DNS queries, port probes.

Read from plain dicts (see `_plain`): each field mapped is recorded as `Fields` would record it.
"""

from __future__ import annotations

from typing import Any, Final

from corral.sources._core.plain import ABSENT, LEAF, MISSING, Node, child_trie, number, peek, sub, subs, text, texts_at
from corral.sources._core.reader import Trie, _is_ip
from corral.sources.guardduty._parts import Parts

_DIRECTIONS: Final = {"INBOUND": 1, "OUTBOUND": 2}
_KUBERNETES_DATA: Final = ("namespace", "resource", "subresource", "resourceName", "parameters")
_AWS_DATA: Final = ("callerType", "errorCode", "userAgent")
_MAX_ASN_DIGITS: Final = 10
_MAX_LIST: Final = 1000
_MAX_IPS: Final = 100


def action_evidences(parts: Parts) -> list[dict[str, Any]]:
    """The evidences of what the finding's `service.action` saw, each without empty values."""
    found: list[dict[str, Any]] = []
    action = parts.action
    present = action[0]
    if "kubernetesApiCallAction" in present and (k8s := sub(action, "kubernetesApiCallAction")) is not MISSING:
        user = sub(parts.k8s, "kubernetesUserDetails") if parts.k8s is not MISSING else MISSING
        found.append(_kubernetes_call(user, k8s))
    if "awsApiCallAction" in present and (api := sub(action, "awsApiCallAction")) is not MISSING:
        found.append(_aws_call(parts.access_key, api))
    if "networkConnectionAction" in present and (net := sub(action, "networkConnectionAction")) is not MISSING:
        found.append(_connection(net))
    if "dnsRequestAction" in present and (domain := text(sub(action, "dnsRequestAction"), "domain")):
        found.append({"query": {"hostname": domain}})
    if "portProbeAction" in present:
        for probe in subs(sub(action, "portProbeAction"), "portProbeDetails", limit=20):
            remote = _endpoint(sub(probe, "remoteIpDetails"), None)
            local = _endpoint(sub(probe, "localIpDetails"), sub(probe, "localPortDetails"))
            probed = {}
            if remote:
                probed["src_endpoint"] = remote
            if local:
                probed["dst_endpoint"] = local
            found.append(probed)
    return [evidence for evidence in found if evidence]


def _kubernetes_call(user: Node, base: Node) -> dict[str, Any]:
    # The readers (`text`, `_texts`, ...) inlined: this runs for every EKS audit-log finding.
    doc, taken = base
    call: dict[str, Any] = {}
    code = doc.get("statusCode")
    if isinstance(code, int) and not isinstance(code, bool):
        taken["statusCode"] = LEAF
    else:
        code = None
    verb = doc.get("verb")
    if isinstance(verb, str) and verb:
        taken["verb"] = LEAF
        call["api"] = {"operation": verb, "response": {"code": code}} if code is not None else {"operation": verb}
    request_uri = doc.get("requestUri")
    if isinstance(request_uri, str) and request_uri:
        taken["requestUri"] = LEAF
        http: dict[str, Any] = {"url": {"path": request_uri}}
    else:
        http = {}
    agent = doc.get("userAgent")
    if isinstance(agent, str) and agent:
        taken["userAgent"] = LEAF
        http["user_agent"] = agent
    if http:
        call["http_request"] = http
    source_ips = _ips(base, "sourceIPs") if "sourceIPs" in doc else None
    remote = _endpoint(sub(base, "remoteIpDetails"), None) if "remoteIpDetails" in doc else None
    if remote:
        call["src_endpoint"] = remote
    elif source_ips:
        call["src_endpoint"] = {"ip": source_ips[0]}
    user_doc, user_taken = user
    if user_doc:
        username = user_doc.get("username")
        if isinstance(username, str) and username:
            user_taken["username"] = LEAF
            person: dict[str, Any] = {"name": username}
        else:
            person = {}
        user_uid = user_doc.get("uid")
        if isinstance(user_uid, str) and user_uid:
            user_taken["uid"] = LEAF
            person["uid"] = user_uid
        groups = _texts(user, "groups") if "groups" in user_doc else None
        if person:
            if groups:
                person["groups"] = [{"name": group} for group in groups]
            call["actor"] = {"user": person}
    if data := texts_at(base, _KUBERNETES_DATA):
        call["data"] = data
    return call


def _aws_call(key: Node, base: Node) -> dict[str, Any]:
    user = {}
    for target, value in (
        ("name", peek(key, "userName")),
        ("uid", text(key, "principalId")),
        ("type", text(key, "userType")),
        ("credential_uid", peek(key, "accessKeyId")),
    ):
        if value is not None:
            user[target] = value
    operation, service_name = text(base, "api"), text(base, "serviceName")
    call: dict[str, Any] = {}
    if operation:
        api: dict[str, Any] = {"operation": operation}
        if service_name:
            api["service"] = {"name": service_name}
        call["api"] = api
    if remote := _endpoint(sub(base, "remoteIpDetails"), None):
        call["src_endpoint"] = remote
    if "name" in user or "uid" in user:
        call["actor"] = {"user": user}
    if data := _data(base, _AWS_DATA):
        call["data"] = data
    return call


def _connection(base: Node) -> dict[str, Any]:
    direction_id = _DIRECTIONS.get(peek(base, "connectionDirection") or "", 0)
    if direction_id:
        base[1]["connectionDirection"] = LEAF
    remote = _endpoint(sub(base, "remoteIpDetails"), sub(base, "remotePortDetails"))
    local = _endpoint(sub(base, "localIpDetails"), sub(base, "localPortDetails"))
    src, dst = (local, remote) if direction_id == 2 else (remote, local)
    info: dict[str, Any] = {"direction_id": direction_id}
    if protocol := text(base, "protocol"):
        info["protocol_name"] = protocol
    connection: dict[str, Any] = {"connection_info": info}
    if src:
        connection["src_endpoint"] = src
    if dst:
        connection["dst_endpoint"] = dst
    return connection


def _endpoint(address: Node, ports: Node | None) -> dict[str, Any] | None:
    doc, taken = address
    ip = doc.get("ipAddressV4")
    if _is_ip(ip):
        taken["ipAddressV4"] = LEAF
    elif "ipAddressV6" in doc and _is_ip(ip := doc["ipAddressV6"]):
        taken["ipAddressV6"] = LEAF
    else:
        ip = None
    port = service = None
    if ports is not None and ports[0] is not ABSENT:
        port_doc, port_taken = ports
        port = port_doc.get("port")
        if isinstance(port, int) and not isinstance(port, bool) and 0 <= port <= 65535:
            port_taken["port"] = LEAF
        else:
            port = None
        service = port_doc.get("portName")
        if isinstance(service, str) and service:
            port_taken["portName"] = LEAF
        else:
            service = None
    if ip is None:
        if not service:
            return None
        endpoint: dict[str, Any] = {}
    else:
        endpoint = {"ip": ip}
    if port is not None:
        endpoint["port"] = port
    if service:
        endpoint["svc_name"] = service
    if ip is not None:
        _place(doc, taken, endpoint)
    return endpoint


def _place(doc: dict[str, Any], taken: Trie, endpoint: dict[str, Any]) -> None:
    # GuardDuty fills the geolocation of addresses it cannot place (private ones) with
    # placeholders: city and organization UNKNOWN, latitude and longitude 0.0, ASN 0. They are
    # no location, so they stay out of OCSF (and in `unmapped`, as sent).
    city = country = None
    node = doc.get("city")
    if isinstance(node, dict) and (city := _known(node.get("cityName"))):
        child_trie(taken, "city")["cityName"] = LEAF
    node = doc.get("country")
    if isinstance(node, dict) and (country := _known(node.get("countryCode"))):
        child_trie(taken, "country")["countryCode"] = LEAF
    if city or country:
        endpoint["location"] = _location(doc, taken, city, country)
    organization = doc.get("organization")
    if isinstance(organization, dict):
        asn = organization.get("asn")
        if isinstance(asn, str) and asn.isdigit() and len(asn) <= _MAX_ASN_DIGITS and int(asn):
            asn_number: int | None = int(asn)
        else:
            asn_number = None
        asn_org, isp = _known(organization.get("asnOrg")), _known(organization.get("isp"))
        if asn_number is not None or asn_org or isp:
            below = child_trie(taken, "organization")
            if asn_number is not None:
                below["asn"] = LEAF
                system: dict[str, Any] = {"number": asn_number}
                if asn_org:
                    below["asnOrg"] = LEAF
                    system["name"] = asn_org
                endpoint["autonomous_system"] = system
            elif asn_org:
                below["asnOrg"] = LEAF
                endpoint["autonomous_system"] = {"name": asn_org}
            if isp:
                below["isp"] = LEAF
                endpoint["isp"] = isp


def _location(doc: dict[str, Any], taken: Trie, city: str | None, country: str | None) -> dict[str, Any]:
    location: dict[str, Any] = {"city": city} if city else {}
    if country:
        location["country"] = country
    geo = doc.get("geoLocation")
    if not isinstance(geo, dict):
        return location
    lat, lon = geo.get("lat"), geo.get("lon")
    if lat == 0 and lon == 0:
        return location
    below = None
    for key, target, given in (("lat", "lat", lat), ("lon", "long", lon)):
        value = number(given)
        if value is not None:
            if below is None:
                below = child_trie(taken, "geoLocation")
            below[key] = LEAF
            location[target] = value
    return location


def _known(value: object) -> str | None:
    """A text unless it is GuardDuty's UNKNOWN placeholder (which then stays unmapped)."""
    if not isinstance(value, str) or not value or value.upper() == "UNKNOWN":
        return None
    return value


def _data(base: Node, names: tuple[str, ...]) -> dict[str, Any] | None:
    return texts_at(base, names) or None


def _texts(node: Node, key: str) -> list[str]:
    """The non-empty strings in the list at `key`, each recorded (`Fields.texts`)."""
    value = node[0].get(key)
    if not isinstance(value, list):
        return []
    taken = child_trie(node[1], key)
    found = []
    for i, item in enumerate(value[:_MAX_LIST]):
        if isinstance(item, str) and item:
            taken[i] = LEAF
            found.append(item)
    return found


def _ips(node: Node, key: str) -> list[str]:
    """The valid IP addresses in the list at `key`, each recorded (`Fields.ips`)."""
    value = node[0].get(key)
    if not isinstance(value, list):
        return []
    taken = child_trie(node[1], key)
    found = []
    for i, item in enumerate(value[:_MAX_IPS]):
        if _is_ip(item):
            taken[i] = LEAF
            found.append(item)
    return found
