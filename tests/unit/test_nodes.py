"""Several OMERO.web nodes behind one front end (nodes.*): what the answers refuse, what the plan sets
(a shared secret key, WhiteNoise in the middleware) and the rendered upstream (nginx server lines,
Apache balancer members). The e2e tier runs nginx -t / apache2 -t on these files and serves three nodes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from omerowizard.catalogue import answers
from omerowizard.features.web_server import site as sitefiles
from omerowizard.model.host import Host
from omerowizard.model.errors import AnswersError
from omerowizard.features.nodes import WHITENOISE
from omerowizard.system.omero import OmeroTarget
from omerowizard.plan.planner import make_plan
from omerowizard.state.probe import State

SECRET = "k3Y-" * 12 + "zz-shared"  # 57 characters
REDIS = "redis://redis.example.org:6379/0"
ALL = {"django": "5.2", "omero-web": "5.33.2", "django-redis": "7", "django-cors-headers": "3.7.0"}


def text_of(members: str, extra: str = "", secret: str = SECRET) -> str:
    return (f"omero: {{omerodir: /srv/omero/OMERO.web}}\n"
            f"web_server: {{kind: nginx, server_name: omero.example.org}}\n"
            f"sessions: {{backend: redis, location: '{REDIS}'}}\n"
            f"nodes:\n  secret_key: '{secret}'\n  members:\n{members}{extra}")


THREE = "    - {host: 127.0.0.1, port: 4080}\n    - {host: 10.0.0.12}\n    - {host: 'fd00::13', port: 4081}\n"


def refused(text: str) -> list:
    with pytest.raises(AnswersError) as err:
        answers.load_text(text, "nodes.yml")
    return err.value.problems


def only(problems, key):
    found = [p for p in problems if p.key == key]
    assert found, [str(p) for p in problems]
    return found[0]


def state(config=None, running=True) -> State:
    target = OmeroTarget("omero-web", Path("/nonexistent/venv"), Path("/nonexistent/omerodir"))
    return State(target=target, installed=True, config=dict(config or {}), packages=dict(ALL),
                 running_pid=1 if running else None)


def site_text(a, name="omero-web.conf") -> sitefiles.WantedFile:
    return {Path(w.path).name: w for w in sitefiles.wanted_files(a, Host(), None, [])}[name]


# ---------------------------------------------------------------------------- answers
def test_three_members_with_redis_and_a_shared_key_are_accepted_with_the_default_port():
    a = answers.load_text(text_of(THREE))
    assert [(m["host"], m["port"]) for m in a.nodes.members] == \
        [("127.0.0.1", 4080), ("10.0.0.12", 4080), ("fd00::13", 4081)]
    assert a.nodes.static == "front_end" and a.nodes.secret_key.reveal() == SECRET


def test_a_duplicate_member_is_refused_with_its_line_and_the_first_one():
    p = only(refused(text_of(THREE + "    - {host: 10.0.0.12, port: 4080}\n")), "nodes.members[3]")
    assert p.line == 10 and "10.0.0.12:4080 is already nodes.members[1]" in p.message
    assert "each application server once" in p.allowed


def test_the_same_ipv6_address_spelled_twice_is_one_member():
    p = only(refused(text_of(THREE + "    - {host: 'fd00:0::13', port: 4081}\n")), "nodes.members[3]")
    assert "nodes.members[2]" in p.message


@pytest.mark.parametrize("bad", ["web1.example.org; include /etc/shadow", "a}", "web1 backup", "a:b:c:d:e:f:g:h:i",
                                 "-web1", "[::1]", "web1.example.org:4080"])
def test_a_host_that_could_end_a_directive_is_refused(bad):
    p = only(refused(text_of(f"    - {{host: {json.dumps(bad)}}}\n    - {{host: 10.0.0.12}}\n")),
             "nodes.members[0].host")
    assert p.line == 7 and repr(bad) in p.message


def test_a_line_break_in_a_host_is_refused_before_anything_else():
    problems = refused(text_of('    - {host: "web1\\n}"}\n    - {host: 10.0.0.12}\n'))
    assert any(p.key == "nodes.members[0].host" and "line" in p.allowed for p in problems)


@pytest.mark.parametrize("port", [0, 65536, 70000])
def test_a_port_out_of_range_names_the_range(port):
    p = only(refused(text_of(f"    - {{host: 10.0.0.11, port: {port}}}\n")), "nodes.members[0].port")
    assert p.line == 7 and "out of range" in p.message and p.allowed == "an integer from 1 to 65535"


def test_file_sessions_with_several_members_are_refused_with_the_reason():
    text = text_of(THREE).replace(f"{{backend: redis, location: '{REDIS}'}}", "{backend: file}")
    p = only(refused(text), "sessions.backend")
    assert p.line == 3 and p.value == "file"
    assert "sessions must be shared" in p.message and "3 application servers" in p.message
    assert "redis" in p.allowed


def test_file_sessions_with_one_member_are_fine():
    text = text_of("    - {host: 10.0.0.11}\n", secret="").replace("  secret_key: ''\n", "")
    text = text.replace(f"{{backend: redis, location: '{REDIS}'}}", "{backend: file}")
    assert answers.load_text(text).nodes.members[0]["host"] == "10.0.0.11"


def test_several_members_without_a_shared_secret_key_are_warned_not_refused():
    """Sessions in Redis are stored unsigned (the e2e test measures it), so they work; signed values do not."""
    text = text_of(THREE).replace(f"  secret_key: '{SECRET}'\n", "")
    p = make_plan(answers.load_text(text), state())
    assert any("nodes.secret_key is empty" in n and "3 application servers" in n for n in p.notes)
    assert "omero.web.secret_key" not in {c.key for c in p.config}
    assert not any("secret_key" in n for n in make_plan(answers.load_text(text_of(THREE)), state()).notes)


@pytest.mark.parametrize("bad, why", [("short-secret", "shorter than 50"), ("a" * 60, "fewer than 5 different"),
                                      ("with blank " * 6, "printable ASCII without blanks"),
                                      ("django-insecure-" + "x1y2z3" * 9, "django-insecure-")])
def test_a_weak_secret_key_is_refused_and_never_shown(bad, why):
    p = only(refused(text_of(THREE, secret=bad)), "nodes.secret_key")
    assert why in p.message and bad not in str(p)


def test_a_loopback_redis_is_not_shared_with_a_member_on_another_host():
    p = only(refused(text_of(THREE).replace(REDIS, "redis://127.0.0.1:6379/0")), "sessions.location")
    assert "10.0.0.12" in p.message and "not shared" in p.message


def test_members_all_on_this_host_may_share_a_loopback_redis():
    members = "    - {host: 127.0.0.1, port: 4081}\n    - {host: localhost, port: 4082}\n"
    a = answers.load_text(text_of(members).replace(REDIS, "redis://127.0.0.1:6379/0"))
    assert len(a.nodes.members) == 2


def test_a_node_only_host_is_checked_too_and_must_listen_where_the_front_end_reaches_it():
    text = text_of(THREE).replace("kind: nginx, server_name: omero.example.org", "kind: none")
    p = only(refused(text), "application_server.host")
    assert "loopback" in p.message and "web_server.kind none" in p.message
    a = answers.load_text(text.replace("omero: {", "application_server: {host: 0.0.0.0}\nomero: {"))
    assert a.web_server.kind == "none" and len(a.nodes.members) == 3
    bad = text.replace(f"{{backend: redis, location: '{REDIS}'}}", "{backend: file}")
    assert only(refused(bad), "sessions.backend")


# ---------------------------------------------------------------------------- plan
def test_the_shared_secret_key_is_set_and_masked_in_the_plan():
    p = make_plan(answers.load_text(text_of(THREE)), state())
    assert p.sets["omero.web.secret_key"] == SECRET
    shown = "\n".join(p.lines())
    assert "omero.web.secret_key" in shown and SECRET not in shown and "****" in shown


def test_without_a_secret_key_a_hand_set_one_is_left_alone_and_one_we_set_is_removed():
    hand = {"omero.web.secret_key": "set-by-hand-" * 5}
    one = answers.load_text("omero: {omerodir: /srv/omero/OMERO.web}\n")
    assert "omero.web.secret_key" not in {c.key for c in make_plan(one, state(hand)).config}
    before = answers.load_text(text_of(THREE))
    p = make_plan(one, state({"omero.web.secret_key": SECRET}), previous=before)
    assert p.unsets == ["omero.web.secret_key"]


def test_static_files_by_the_nodes_put_whitenoise_first_and_keep_cors():
    text = text_of(THREE, "  static: nodes\n") + "cors: {mode: all}\n"
    p = make_plan(answers.load_text(text), state())
    middleware = json.loads(p.sets["omero.web.middleware"])
    assert middleware[0] == WHITENOISE
    classes = [m["class"] for m in middleware]
    assert classes.count("whitenoise.middleware.WhiteNoiseMiddleware") == 1
    assert "corsheaders.middleware.CorsMiddleware" in classes
    assert "django.contrib.sessions.middleware.SessionMiddleware" in classes
    # applied, the same answers plan nothing more
    again = make_plan(answers.load_text(text), state(p.sets))
    assert [c.key for c in again.config] == []


def test_back_to_static_files_from_the_front_end_removes_only_whitenoise():
    config = make_plan(answers.load_text(text_of(THREE, "  static: nodes\n")), state()).sets
    p = make_plan(answers.load_text(text_of(THREE)), state(config))
    assert p.unsets == ["omero.web.middleware"]  # back to omero-web's default list


def test_a_front_end_that_lists_no_node_of_its_own_is_told():
    p = make_plan(answers.load_text(text_of("    - {host: 10.0.0.11}\n    - {host: 10.0.0.12}\n")), state())
    assert any("gets no request" in n for n in p.notes)
    p = make_plan(answers.load_text(text_of(THREE)), state())
    assert not any("gets no request" in n for n in p.notes)


def test_a_node_behind_an_https_front_end_trusts_its_forwarded_proto():
    text = text_of(THREE, "  behind_https: true\n").replace("kind: nginx, server_name: omero.example.org",
                                                             "kind: none").replace("omero: {", "application_server: "
                                                                                   "{host: 0.0.0.0}\nomero: {")
    p = make_plan(answers.load_text(text), state())
    assert json.loads(p.sets["omero.web.secure_proxy_ssl_header"]) == ["HTTP_X_FORWARDED_PROTO", "https"]
    assert p.sets["omero.web.session_cookie_secure"] == "true"


# ---------------------------------------------------------------------------- rendered files
def test_nginx_upstream_has_a_server_line_per_member_and_skips_a_dead_one():
    text = site_text(answers.load_text(text_of(THREE))).content
    assert ("upstream omeroweb_4080 {\n"
            "    # several OMERO.web nodes (nodes.members): one that fails is left out for 2s\n"
            "    server 127.0.0.1:4080 max_fails=1 fail_timeout=2s;\n"
            "    server 10.0.0.12:4080 max_fails=1 fail_timeout=2s;\n"
            "    server [fd00::13]:4081 max_fails=1 fail_timeout=2s;\n}") in text
    assert "proxy_next_upstream error timeout http_502 http_503;" in text
    assert "proxy_connect_timeout 5s;" in text
    # the maintenance page is still what a request gets when no node answers
    assert "error_page 502 503 504 =503 @omeroweb_4080_maintenance;" in text
    assert "alias /srv/omero/OMERO.web/var/static/;" in text


def test_one_member_is_the_single_upstream_as_before():
    a = answers.load_text(text_of("    - {host: 10.0.0.11, port: 4090}\n", secret="").replace(
        "  secret_key: ''\n", ""))
    text = site_text(a).content
    assert "    server 10.0.0.11:4090 fail_timeout=0;\n}" in text and "proxy_next_upstream" not in text


def test_no_members_renders_exactly_what_it_did_before():
    a = answers.load_text("omero: {omerodir: /srv/omero/OMERO.web}\nweb_server: {server_name: omero.example.org}\n")
    text = site_text(a).content
    assert "upstream omeroweb_4080 {\n    server 127.0.0.1:4080 fail_timeout=0;\n}" in text
    assert "nodes" not in text and "proxy_next_upstream" not in text


def test_static_files_by_the_nodes_are_proxied_not_aliased():
    a = answers.load_text(text_of(THREE, "  static: nodes\n") + "prefix: /omero\n")
    text = site_text(a).content
    assert "var/static" not in text and "location /omero/static/" not in text
    assert "location /omero/ {" in text
    apache = site_text(answers.load_text(text_of(THREE, "  static: nodes\n").replace("kind: nginx", "kind: apache")))
    assert "var/static" not in apache.content and "ProxyPass /static/ !" not in apache.content


def test_nginx_development_balances_the_same_way():
    a = answers.load_text(text_of(THREE).replace("kind: nginx", "kind: nginx-development"))
    text = site_text(a, "nginx-development.conf").content
    assert "        server [fd00::13]:4081 max_fails=1 fail_timeout=2s;" in text
    assert "            proxy_next_upstream error timeout http_502 http_503;" in text


def test_apache_balancer_has_a_member_per_node_and_loads_its_modules():
    f = site_text(answers.load_text(text_of(THREE).replace("kind: nginx", "kind: apache")))
    text = f.content
    assert ('    <Proxy "balancer://omeroweb_4080">\n'
            "        BalancerMember http://127.0.0.1:4080 retry=2 connectiontimeout=5 timeout=60\n"
            "        BalancerMember http://10.0.0.12:4080 retry=2 connectiontimeout=5 timeout=60\n"
            "        BalancerMember http://[fd00::13]:4081 retry=2 connectiontimeout=5 timeout=60\n"
            "        ProxySet lbmethod=byrequests\n"
            "    </Proxy>\n"
            "    ProxyPass / balancer://omeroweb_4080/\n"
            "    ProxyPassReverse / balancer://omeroweb_4080/\n") in text
    assert {"proxy_balancer", "lbmethod_byrequests", "slotmem_shm"} <= set(f.modules)
    assert "ErrorDocument 503 /omerowizard-maintenance/maintenance.html" in text


def test_a_node_only_host_writes_no_front_end_file():
    text = text_of(THREE).replace("kind: nginx, server_name: omero.example.org", "kind: none").replace(
        "omero: {", "application_server: {host: 0.0.0.0}\nomero: {")
    a = answers.load_text(text)
    assert sitefiles.wanted_files(a, Host(), None, []) == []
    assert "web_server.server_name" not in a.to_nested().get("web_server", {})


def test_infer_reads_static_and_a_valid_secret_back_and_leaves_a_weak_hand_set_one_alone():
    from omerowizard.catalogue.infer import answers_from_config

    config = make_plan(answers.load_text(text_of(THREE, "  static: nodes\n")), state()).sets
    live = answers.validate(answers_from_config(config, answers.defaults().to_nested()))
    assert live.nodes.static == "nodes" and live.nodes.secret_key.reveal() == SECRET
    weak = answers.validate(answers_from_config({"omero.web.secret_key": "by-hand"}, answers.defaults().to_nested()))
    assert weak.nodes.secret_key is None and weak.nodes.static == "front_end"
    kept = make_plan(weak, state({"omero.web.secret_key": "by-hand"}))
    assert "omero.web.secret_key" not in {c.key for c in kept.config}


def test_every_bad_member_is_reported_at_once_with_its_line():
    """A port out of range in one item does not hide the other items' problems nor the rules that join answers."""
    text = ("sessions: {backend: file}\nnodes:\n  members:\n    - {host: 127.0.0.1, port: 4081}\n"
            "    - {host: 127.0.0.1, port: 4081}\n    - {host: 'web3;', port: 4082}\n    - {host: web4, port: 99999}\n"
            "    - {host: 5}\n")
    found = {p.key: p.line for p in refused(text)}
    assert found == {"sessions.backend": 1, "nodes.members[1]": 5, "nodes.members[2].host": 6,
                     "nodes.members[3].port": 7, "nodes.members[4].host": 8}


def test_a_member_that_does_not_answer_is_a_preflight_warning_and_this_hosts_own_node_is_not_asked():
    import socket

    from omerowizard.features.nodes import FEATURE

    with socket.socket() as listening, socket.socket() as closed:
        listening.bind(("127.0.0.1", 0))
        listening.listen()
        closed.bind(("127.0.0.1", 0))  # bound, never listening: refused
        up, down = listening.getsockname()[1], closed.getsockname()[1]
        members = (f"    - {{host: 127.0.0.1, port: {up}}}\n    - {{host: 127.0.0.1, port: {down}}}\n"
                   "    - {host: 127.0.0.1, port: 4080}\n")
        p = make_plan(answers.load_text(text_of(members)), state(running=False))
        checks = FEATURE.preflight(p)
    assert [c.warning for c in checks] == [True]
    assert f"127.0.0.1:{down} does not answer" in checks[0].message and "maintenance page" in checks[0].message


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "0:0::0"])
def test_an_address_to_listen_on_is_not_a_member(host):
    p = only(refused(text_of(f"    - {{host: '{host}'}}\n    - {{host: 10.0.0.12}}\n")), "nodes.members[0].host")
    assert p.line == 7 and "listen" in p.message


def test_a_loopback_memcached_is_not_shared_either():
    text = text_of(THREE).replace(f"{{backend: redis, location: '{REDIS}'}}",
                                  "{backend: memcached, location: 'localhost:11211'}")
    assert "not shared" in only(refused(text), "sessions.location").message


def test_a_member_without_a_host_value_is_refused_not_rendered():
    p = only(refused(text_of("    - {host: null}\n    - {host: 10.0.0.12}\n")), "nodes.members[0].host")
    assert p.line == 7 and "is empty, but it is required" in p.message


def test_the_manuals_nodes_example_is_valid_for_a_front_end_and_for_a_node_only_host():
    import re

    page = (Path(__file__).resolve().parents[2] / "docs" / "nodes.md").read_text()
    example = re.search(r"```yaml\n(sessions: \{backend: redis.*?nodes:.*?)```", page, re.S)
    assert example, "docs/nodes.md has an example of the nodes answers"
    front = answers.load_text(example.group(1), "docs/nodes.md")
    assert len(front.nodes.members) == 3 and front.nodes.static == "nodes"
    node = answers.load_text(example.group(1) + "web_server: {kind: none}\napplication_server: {host: 0.0.0.0}\n")
    assert sitefiles.wanted_files(node, Host(), None, []) == []


def test_an_ipv6_member_is_typed_with_its_port_in_brackets():
    from omerowizard.catalogue import BY_KEY

    q = BY_KEY["nodes.members"]
    assert q.parse("[::1]:4082; [2001:db8::2]; web1.example.org:4080; ::1") == [
        {"host": "::1", "port": 4082}, {"host": "2001:db8::2"}, {"host": "web1.example.org", "port": 4080},
        {"host": "::1"}]
    assert BY_KEY["servers"].parse("[2001:db8::5]:4064 Main") == [{"host": "2001:db8::5", "port": 4064,
                                                                     "name": "Main"}]
    assert q.parse("[::1]:port") == [{"host": "[::1]:port"}]  # not an address: the host check refuses it
