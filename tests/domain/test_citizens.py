import datetime as dt

from cityops.domain.citizens import Citizen, mask_id_number, mask_phone, masked


def test_masks_keep_only_the_ends() -> None:
    assert mask_phone("13812345678") == "138****5678"
    assert mask_phone("+86 138-1234-5678") == "861******5678"  # 13 digits: 6 hidden
    assert mask_phone("110") == "***"
    assert mask_id_number("310115198001011234") == "310115********1234"
    assert mask_id_number("12345") == "*****"
    c = masked(Citizen(id="c-1", name="Li", phone="13812345678",
                       id_number="310115198001011234"))
    assert "12345678" not in c.phone and "19800101" not in c.id_number


def test_age_on_a_day() -> None:
    c = Citizen(id="c-1", name="Li", birth_date=dt.date(1946, 3, 1))
    assert c.age_on(dt.date(2026, 2, 28)) == 79
    assert c.age_on(dt.date(2026, 3, 1)) == 80
    assert Citizen(id="c-2", name="Wu").age_on(dt.date(2026, 1, 1)) is None
