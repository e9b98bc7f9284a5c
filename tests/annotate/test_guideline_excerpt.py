"""The guideline's paragraphs a task shows: those on the labels in play, the first label's
first."""

from labelloop.annotate.progress import guideline_excerpt

TEXT = ("Pick the customer's intent.\n\n"
        "Card arrival: the new card has not come in the post.\n\n"
        "lost_or_stolen_card: the card is gone; safety-critical.\n\n"
        "Exchange rates are about the price of a currency.")


def test_paragraphs_on_the_labels_in_play_first_label_first():
    assert guideline_excerpt(TEXT, ["lost_or_stolen_card", "card_arrival"]) == [
        "lost_or_stolen_card: the card is gone; safety-critical.",
        "Card arrival: the new card has not come in the post."]


def test_no_paragraph_on_them_gives_the_first_and_an_empty_guideline_nothing():
    assert guideline_excerpt(TEXT, ["pin_blocked"]) == ["Pick the customer's intent."]
    assert guideline_excerpt("", ["pin_blocked"]) == []


def test_a_one_paragraph_guideline_is_read_line_by_line():
    text = "Intro\nrefund: money back\ncard_arrival: waiting for the card"
    assert guideline_excerpt(text, ["card_arrival"], limit=1) == [
        "card_arrival: waiting for the card"]
