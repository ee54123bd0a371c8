-- An unknown column is a planning error naming the column.
SELECT no_such_column FROM spans;
