using System.Globalization;
using System.Text;

namespace Lodestar.Kubernetes.Api.Internal;

/// <summary>
/// Reads protobuf wire format from a span, field by field, without building an intermediate message graph: the
/// EndpointSlice decoder fills the source's models directly from it. Fields it is not asked for are skipped.
/// </summary>
/// <remarks>Every read is bounds-checked; malformed input throws <see cref="InvalidDataException"/> naming the byte offset.</remarks>
internal ref struct ProtobufReader
{
    /// <summary>Wire type of a varint field.</summary>
    public const int Varint = 0;

    /// <summary>Wire type of a length-delimited field (string, bytes, message, packed repeated).</summary>
    public const int LengthDelimited = 2;

    private readonly ReadOnlySpan<byte> _data;
    private readonly int _base;
    private int _position;

    /// <summary>Initializes a reader over a whole message.</summary>
    public ProtobufReader(ReadOnlySpan<byte> data)
        : this(data, 0)
    {
    }

    private ProtobufReader(ReadOnlySpan<byte> data, int offset)
    {
        _data = data;
        _base = offset;
        _position = 0;
    }

    /// <summary>Reads the next field's number and wire type; returns <see langword="false"/> at the end of the message.</summary>
    public bool Next(out int field, out int wireType)
    {
        if (_position >= _data.Length)
        {
            field = 0;
            wireType = 0;
            return false;
        }

        var tag = ReadVarint();
        field = (int)(tag >> 3);
        wireType = (int)(tag & 7);
        if (field <= 0 || tag >> 3 > int.MaxValue)
        {
            throw Invalid("a field number out of range");
        }

        return true;
    }

    /// <summary>Reads a varint (int32, int64, bool, enum).</summary>
    public ulong ReadVarint()
    {
        ulong result = 0;
        for (var shift = 0; shift < 64; shift += 7)
        {
            if (_position >= _data.Length)
            {
                throw Invalid("a truncated varint");
            }

            var b = _data[_position++];
            result |= (ulong)(b & 0x7F) << shift;
            if ((b & 0x80) == 0)
            {
                return result;
            }
        }

        throw Invalid("a varint longer than ten bytes");
    }

    /// <summary>Reads a length-delimited field's bytes.</summary>
    public ReadOnlySpan<byte> ReadBytes() => ReadBytes(out _);

    /// <summary>Reads a UTF-8 string field.</summary>
    public string ReadString()
    {
        var bytes = ReadBytes();
        return bytes.IsEmpty ? "" : Encoding.UTF8.GetString(bytes);
    }

    /// <summary>Reads a bool field.</summary>
    public bool ReadBool() => ReadVarint() != 0;

    /// <summary>Reads an int32 field (negative values are ten-byte varints).</summary>
    public int ReadInt32() => unchecked((int)ReadVarint());

    /// <summary>
    /// Returns a reader over an embedded message field. Only the fields the decoder knows are descended into, so the
    /// depth is bounded by the schema, whatever the input.
    /// </summary>
    public ProtobufReader ReadMessage()
    {
        var bytes = ReadBytes(out var start);
        return new ProtobufReader(bytes, _base + start);
    }

    /// <summary>Skips a field of <paramref name="wireType"/>.</summary>
    public void Skip(int wireType)
    {
        switch (wireType)
        {
            case Varint:
                ReadVarint();
                break;
            case 1:
                Advance(8);
                break;
            case LengthDelimited:
                ReadBytes();
                break;
            case 5:
                Advance(4);
                break;
            default:
                throw Invalid(string.Create(CultureInfo.InvariantCulture, $"wire type {wireType}, which no Kubernetes field uses"));
        }
    }

    /// <summary>Checks that a field has the wire type its definition gives it.</summary>
    public readonly void Expect(int wireType, int expected)
    {
        if (wireType != expected)
        {
            throw Invalid(string.Create(CultureInfo.InvariantCulture, $"wire type {wireType} where {expected} belongs"));
        }
    }

    private ReadOnlySpan<byte> ReadBytes(out int start)
    {
        var length = ReadVarint();
        if (length > (ulong)(_data.Length - _position))
        {
            throw Invalid("a length that runs past the end");
        }

        start = _position;
        var bytes = _data.Slice(_position, (int)length);
        _position += (int)length;
        return bytes;
    }

    private void Advance(int count)
    {
        if (count > _data.Length - _position)
        {
            throw Invalid("a fixed-size field that runs past the end");
        }

        _position += count;
    }

    private readonly InvalidDataException Invalid(string what)
        => new(string.Create(CultureInfo.InvariantCulture, $"{what} at byte {_base + _position}"));
}
