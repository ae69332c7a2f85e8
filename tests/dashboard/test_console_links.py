"""Every demo finding links to its vendor console, except Defender attack paths, which carry none.

Defender sends `links.azurePortal` on assessments but not on sub-assessments nor on assessments
of AWS and GCP resources: those get the same recommendation page, built from the assessment
key. An attack path record (`microsoft.security/attackpaths`) has no portal link, and the
portal has no documented address for one attack path, so none is made up.
"""

from __future__ import annotations

from pathlib import Path

from corral.pipeline import Pipeline
from corral.sinks.chat import console_url
from corral.sources.defender._common import recommendation_link
from corral.stores import open_store
from corral.stores.base import FindingQuery
from tests.coverage.conftest import deliveries
from tests.dashboard.test_screenshot import DEMO


def test_every_demo_finding_has_a_console_link_but_attack_paths(tmp_path: Path) -> None:
    """Sub-assessments and multicloud assessments link to their recommendation; only attack paths have no link."""
    pipeline = Pipeline(open_store(f"sqlite:///{tmp_path / 'demo.db'}"))
    try:
        pipeline.ingest(deliveries(*DEMO))
        items = pipeline.store.query(FindingQuery(limit=500)).items
    finally:
        pipeline.close()
    assert len(items) >= 30
    missing = [i for i in items if console_url(i.document) is None]
    assert missing and all("/providers/microsoft.security/attackpaths/" in i.key[2] for i in missing)
    subs = [i for i in items if "/subassessments/" in i.key[2]]
    assert subs and all(
        (console_url(i.document) or "").startswith(
            "https://portal.azure.com/#blade/Microsoft_Azure_Security/RecommendationsBlade/assessmentKey/"
        )
        for i in subs
    )


def test_recommendation_link_takes_only_an_assessment_key() -> None:
    """The link is built from a GUID key only: anything else in the id gives no link."""
    key = "c609cf0f-71ab-41e9-a3c6-9a1f7fe1b8d5"
    base = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.ContainerService/managedClusters/aks"
    assert recommendation_link(f"{base}/providers/Microsoft.Security/assessments/{key}/subassessments/x") == (
        f"https://portal.azure.com/#blade/Microsoft_Azure_Security/RecommendationsBlade/assessmentKey/{key}"
    )
    assert recommendation_link(f'{base}/providers/Microsoft.Security/assessments/{key}"><script>') is None
    assert recommendation_link(f"{base}/providers/Microsoft.Security/assessments/not-a-key") is None
    assert recommendation_link(None) is None
