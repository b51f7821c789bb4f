"""The adversarial folder sees the shared test helpers."""


def test_the_shared_helpers_import():
    import _cli
    import _factories

    assert callable(_cli.run) and callable(_factories.valid_encounter_rows)
