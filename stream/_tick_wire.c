/* A serialised `TickBatch` (proto/financelake/common/v1/tick.proto) read into flat column
 * buffers in one pass of C, for the stream's per-record decode (`tick_columns.py`).
 *
 * Any valid encoding of the message is read: fields in any order and repeated, numeric
 * columns packed or not, unknown fields skipped. What this reader does not take on it
 * declines by returning None, and the caller then lets protobuf parse the bytes: malformed
 * or truncated input, groups, a known field with another wire type, and strings that are
 * not ASCII (protobuf checks their UTF-8). So whatever it returns is what the protobuf
 * parser would read from the same bytes.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <stdint.h>
#include <string.h>

#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "the columns are copied as little-endian words, as the wire holds them"
#endif

enum { SYMBOL = 1, TIMES = 2, PRICES = 3, SIZES = 4, EXCHANGES = 5, TRADE_IDS = 6 };
enum { WIRE_VARINT = 0, WIRE_I64 = 1, WIRE_LEN = 2, WIRE_I32 = 5 };
#define MAX_FIELD_NUMBER ((1u << 29) - 1)
#define CONTINUED 0x8080808080808080ULL
/* Keys and lengths are 32-bit varints: protobuf refuses longer ones. */
#define SIZE_BYTES 5

typedef struct {
    const uint8_t *at;
    const uint8_t *end;
} Cursor;

/* A varint of at most `most` bytes (10: 64 bits); 0 when it runs past the end or is longer. */
static int read_varint(Cursor *cursor, uint64_t *value, int most) {
    uint64_t result = 0;
    for (int index = 0; index < most; index++) {
        if (cursor->at >= cursor->end) {
            return 0;
        }
        uint8_t byte = *cursor->at++;
        if (index == 9 && byte > 1) {
            return 0;
        }
        result |= (uint64_t)(byte & 0x7F) << (7 * index);
        if (byte < 0x80) {
            *value = result;
            return 1;
        }
    }
    return 0;
}

/* A length-delimited payload: where it starts, and the cursor moved past it. */
static int read_payload(Cursor *cursor, Cursor *payload) {
    uint64_t length;
    if (!read_varint(cursor, &length, SIZE_BYTES) || length > (uint64_t)(cursor->end - cursor->at)) {
        return 0;
    }
    payload->at = cursor->at;
    payload->end = cursor->at + length;
    cursor->at = payload->end;
    return 1;
}

static int is_ascii(const uint8_t *at, size_t length) {
    uint8_t seen = 0;
    for (size_t index = 0; index < length; index++) {
        seen |= at[index];
    }
    return seen < 0x80;
}

/* One repeated string column: its values back to back, and offsets (int64, as Arrow's
 * large_string has them) of count + 1. */
typedef struct {
    Py_ssize_t count;
    Py_ssize_t bytes;
    int64_t *offsets;
    uint8_t *data;
} Strings;

typedef struct {
    const uint8_t *symbol;
    Py_ssize_t symbol_length;
    Py_ssize_t times;
    Py_ssize_t prices;
    Py_ssize_t sizes;
    int64_t *time_values;
    uint8_t *price_values;
    uint8_t *size_values;
    Strings exchanges;
    Strings trade_ids;
} Columns;

static void add_string(Strings *strings, const Cursor *value) {
    Py_ssize_t length = value->end - value->at;
    if (strings->data != NULL) {
        memcpy(strings->data + strings->bytes, value->at, (size_t)length);
        strings->offsets[strings->count + 1] = strings->bytes + length;
    }
    strings->count++;
    strings->bytes += length;
}

static void add_doubles(uint8_t *values, Py_ssize_t *count, const uint8_t *at, Py_ssize_t n) {
    if (values != NULL) {
        memcpy(values + 8 * *count, at, (size_t)(8 * n));
    }
    *count += n;
}

/* A packed run of times into the times column (unset: only count them, by their last bytes; the
 * filling pass proves them). 0: one runs past the end or past 64 bits. */
static int read_times(Cursor payload, Columns *columns) {
    if (columns->time_values == NULL) {
        Py_ssize_t count = 0;
        for (const uint8_t *at = payload.at; at < payload.end; at++) {
            count += *at < 0x80;
        }
        columns->times += count;
        return payload.at == payload.end || payload.end[-1] < 0x80;
    }
    int64_t *out = columns->time_values + columns->times;
    while (payload.at < payload.end) {
        uint64_t low = 0;
        if (payload.end - payload.at >= 9) {
            memcpy(&low, payload.at, 8);
        }
        if ((low & CONTINUED) == CONTINUED && payload.at[8] < 0x80) {
            /* Nine bytes, the width of nanosecond times from 2001 to 2262: the eight
             * 7-bit groups of the first word are closed up pairwise, then by pairs and
             * quads, and the ninth byte supplies the top seven bits. */
            low &= 0x7F7F7F7F7F7F7F7FULL;
            low = (low & 0x00FF00FF00FF00FFULL) | ((low & 0xFF00FF00FF00FF00ULL) >> 1);
            low = (low & 0x0000FFFF0000FFFFULL) | ((low & 0xFFFF0000FFFF0000ULL) >> 2);
            low = (low & 0x00000000FFFFFFFFULL) | ((low & 0xFFFFFFFF00000000ULL) >> 4);
            *out++ = (int64_t)(low | (uint64_t)payload.at[8] << 56);
            payload.at += 9;
            continue;
        }
        uint64_t value;
        if (!read_varint(&payload, &value, 10)) {
            return 0;
        }
        *out++ = (int64_t)value;
    }
    columns->times = out - columns->time_values;
    return 1;
}

/* One pass over the message. With the output buffers unset it counts; with them set (sized
 * by a counting pass over the same bytes) it fills them, checking what counting took on
 * trust. 0: decline (see the top). */
static int walk(const uint8_t *data, Py_ssize_t size, Columns *columns) {
    const int filling = columns->time_values != NULL;
    Cursor cursor = {data, data + size};
    while (cursor.at < cursor.end) {
        uint64_t key;
        if (!read_varint(&cursor, &key, SIZE_BYTES)) {
            return 0;
        }
        uint64_t field = key >> 3;
        unsigned wire = (unsigned)(key & 7);
        if (field == 0 || field > MAX_FIELD_NUMBER) {
            return 0;
        }
        Cursor payload;
        switch (field) {
        case SYMBOL:
        case EXCHANGES:
        case TRADE_IDS:
            if (wire != WIRE_LEN || !read_payload(&cursor, &payload)) {
                return 0;
            }
            if (filling && !is_ascii(payload.at, (size_t)(payload.end - payload.at))) {
                return 0;
            }
            if (field == SYMBOL) {  /* a singular field: the last one read wins */
                columns->symbol = payload.at;
                columns->symbol_length = payload.end - payload.at;
            } else {
                add_string(field == EXCHANGES ? &columns->exchanges : &columns->trade_ids, &payload);
            }
            break;
        case TIMES:
            if (wire == WIRE_VARINT) {
                payload.at = cursor.at;
                payload.end = cursor.end;
                uint64_t value;
                if (!read_varint(&payload, &value, 10)) {
                    return 0;
                }
                cursor.at = payload.at;
                if (filling) {
                    columns->time_values[columns->times] = (int64_t)value;
                }
                columns->times++;
            } else if (wire != WIRE_LEN || !read_payload(&cursor, &payload) ||
                       !read_times(payload, columns)) {
                return 0;
            }
            break;
        case PRICES:
        case SIZES: {
            uint8_t *values = field == PRICES ? columns->price_values : columns->size_values;
            Py_ssize_t *count = field == PRICES ? &columns->prices : &columns->sizes;
            if (wire == WIRE_I64) {
                if (cursor.end - cursor.at < 8) {
                    return 0;
                }
                add_doubles(values, count, cursor.at, 1);
                cursor.at += 8;
            } else if (wire == WIRE_LEN && read_payload(&cursor, &payload)) {
                Py_ssize_t length = payload.end - payload.at;
                if (length % 8) {
                    return 0;
                }
                add_doubles(values, count, payload.at, length / 8);
            } else {
                return 0;
            }
            break;
        }
        default: {  /* an unknown field: skipped, as protobuf keeps it aside */
            uint64_t ignored;
            if (wire == WIRE_VARINT) {
                if (!read_varint(&cursor, &ignored, 10)) {
                    return 0;
                }
            } else if (wire == WIRE_I64 || wire == WIRE_I32) {
                Py_ssize_t width = wire == WIRE_I64 ? 8 : 4;
                if (cursor.end - cursor.at < width) {
                    return 0;
                }
                cursor.at += width;
            } else if (wire != WIRE_LEN || !read_payload(&cursor, &payload)) {
                return 0;  /* groups, and wire types that do not exist */
            }
        }
        }
    }
    return 1;
}

static PyObject *new_bytes(Py_ssize_t size, uint8_t **data) {
    PyObject *bytes = PyBytes_FromStringAndSize(NULL, size);
    if (bytes != NULL) {
        *data = (uint8_t *)PyBytes_AS_STRING(bytes);
    }
    return bytes;
}

static PyObject *new_strings(Strings *counted, Strings *filled, PyObject **data) {
    uint8_t *offsets;
    PyObject *bytes = new_bytes((counted->count + 1) * 8, &offsets);
    if (bytes == NULL) {
        return NULL;
    }
    *data = new_bytes(counted->bytes, &filled->data);
    if (*data == NULL) {
        Py_DECREF(bytes);
        return NULL;
    }
    filled->offsets = (int64_t *)offsets;
    filled->offsets[0] = 0;
    return bytes;
}

PyDoc_STRVAR(read_tick_batch_doc,
"read_tick_batch(raw, /)\n--\n\n"
"The columns of a serialised TickBatch: (symbol, times, prices, sizes, exchange offsets,\n"
"exchange bytes, trade id offsets, trade id bytes), each a bytes object of little-endian\n"
"int64s, float64s, int64 offsets or string bytes; None when protobuf must parse them.");

static PyObject *read_tick_batch(PyObject *module, PyObject *arg) {
    (void)module;
    Py_buffer view;
    if (PyObject_GetBuffer(arg, &view, PyBUF_SIMPLE) < 0) {
        return NULL;
    }
    const uint8_t *data = view.buf;
    Columns counted = {0};
    PyObject *result = NULL;
    if (!walk(data, view.len, &counted)) {
        PyBuffer_Release(&view);
        Py_RETURN_NONE;
    }
    Columns filled = {0};
    PyObject *times = NULL, *prices = NULL, *sizes = NULL, *exchange_offsets = NULL,
             *exchange_data = NULL, *trade_id_offsets = NULL, *trade_id_data = NULL;
    uint8_t *time_bytes;
    if (!(times = new_bytes(counted.times * 8, &time_bytes)) ||
        !(prices = new_bytes(counted.prices * 8, &filled.price_values)) ||
        !(sizes = new_bytes(counted.sizes * 8, &filled.size_values)) ||
        !(exchange_offsets = new_strings(&counted.exchanges, &filled.exchanges, &exchange_data)) ||
        !(trade_id_offsets = new_strings(&counted.trade_ids, &filled.trade_ids, &trade_id_data))) {
        goto done;
    }
    filled.time_values = (int64_t *)time_bytes;
    if (!walk(data, view.len, &filled) || filled.times != counted.times) {
        Py_INCREF(Py_None);
        result = Py_None;
        goto done;
    }
    PyObject *symbol = PyUnicode_DecodeASCII(
        filled.symbol == NULL ? "" : (const char *)filled.symbol, filled.symbol_length, NULL);
    if (symbol == NULL) {
        goto done;
    }
    result = PyTuple_Pack(8, symbol, times, prices, sizes, exchange_offsets, exchange_data,
                          trade_id_offsets, trade_id_data);
    Py_DECREF(symbol);
done:
    Py_XDECREF(times);
    Py_XDECREF(prices);
    Py_XDECREF(sizes);
    Py_XDECREF(exchange_offsets);
    Py_XDECREF(exchange_data);
    Py_XDECREF(trade_id_offsets);
    Py_XDECREF(trade_id_data);
    PyBuffer_Release(&view);
    return result;
}

static PyMethodDef methods[] = {
    {"read_tick_batch", read_tick_batch, METH_O, read_tick_batch_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "financelake.stream._tick_wire",
    .m_doc = "A serialised TickBatch read into column buffers in C (see tick_columns.py).",
    .m_size = 0,
    .m_methods = methods,
};

PyMODINIT_FUNC PyInit__tick_wire(void) { return PyModuleDef_Init(&module); }
