# Django's zh_Hans formats group digits by 4 with no separator (20002, 3202253.23);
# Chinese business software groups by thousands with a comma, as English does. The
# rest of the zh_Hans formats stay Django's.
THOUSAND_SEPARATOR = ","
NUMBER_GROUPING = 3
