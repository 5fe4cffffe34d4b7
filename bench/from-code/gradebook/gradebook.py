"""A small grade book: averages, letter grades and the best student."""


def average(scores):
    """The mean of the scores, rounded to one decimal place; 0.0 for no scores."""
    if not scores:
        return 0.0
    return round(sum(scores) / len(scores), 1)


def letter(score):
    """The letter grade of a score from 0 to 100: A from 90, B from 80, C from 70, D from 60, else F."""
    for bound, grade in ((90, "A"), (80, "B"), (70, "C"), (60, "D")):
        if score >= bound:
            return grade
    return "F"


def top_student(grades):
    """The name with the highest average in a dict of name -> scores; None for an empty dict.
    A tie goes to the name that comes first alphabetically."""
    if not grades:
        return None
    return min(grades, key=lambda name: (-average(grades[name]), name))
