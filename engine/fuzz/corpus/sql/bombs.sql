SELECT length(repeat('x', 1000000000)), array_length(array_repeat(1, 1000000000)), count(*) FROM generate_series(1, 100000000)
