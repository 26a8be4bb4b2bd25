import pytest

from seqlab.data.text import seed001_clean


@pytest.mark.parametrize("text, expected", [
    # punctuation becomes separate tokens; runs of one mark stay together
    ("good,bad!", "good , bad !"),
    ("(great)", "( great )"),
    ("a well-made film... really!!", "a well-made film ... really !!"),
    ("film--a mess", "film -- a mess"),
    ("wait.....what?!", "wait ..... what ? !"),
    ("3.5 stars, 1,000 fans.", "3.5 stars , 1,000 fans ."),
    ("The ''Conan'' remake", "the '' conan '' remake"),
    # lower-case, whitespace collapsed
    ("  Hello\n\tWORLD  ", "hello world"),
    ("", ""),
    # irregular contractions
    ("I can't believe it won't work", "i cannot believe it will not work"),
    ("Let's go", "let us go"),
    # generic endings
    ("Don't", "do not"),
    ("They're sure we'll go; I'd say you've seen it, I'm sure",
     "they are sure we will go ; i would say you have seen it , i am sure"),
    ("it isn't, wasn't, couldn't", "it is not , was not , could not"),
    # 's is "is" only after pronouns and question words; possessives stay
    ("It's John's car, isn't it?", "it is john's car , is not it ?"),
    ("he's the dog's owner", "he is the dog's owner"),
    ("That's what's there; here's where's who's how's", "that is what is there ; here is where is who is how is"),
    ("She's the film's star", "she is the film's star"),
    # typographic apostrophes count as apostrophes
    ("It\u2019s great, don\u2019t miss", "it is great , do not miss"),
    # apostrophes that are not contractions
    ("at 5 o'clock", "at 5 o'clock"),
    ("the kids' toys", "the kids ' toys"),
    ("'quoted'", "' quoted '"),
])
def test_seed001_clean(text, expected):
    assert seed001_clean(text) == expected


def test_seed001_clean_is_idempotent():
    once = seed001_clean("It's a MESS, isn't it?! The director's cut won't help...")
    assert once == "it is a mess , is not it ? ! the director's cut will not help ..."
    assert seed001_clean(once) == once
