-- hex_id writes binary ids as lowercase hex, equal to encode(x, 'hex');
-- a NULL id gives NULL; literal bytes work too.
SELECT hex_id(trace_id) AS trace,
       hex_id(span_id) AS span,
       hex_id(parent_span_id) AS parent,
       hex_id(trace_id) = encode(trace_id, 'hex') AS same_as_encode
FROM spans
WHERE trace_id = decode('1fdd7128f310c389df1a92ab81129629', 'hex')
UNION ALL
SELECT hex_id(X'00ff10'), NULL, hex_id(NULL), true
ORDER BY trace;
