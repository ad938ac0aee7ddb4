using System.Buffers.Binary;

namespace Lodestar.Kubernetes.Api.Internal;

/// <summary>
/// Reads the API server's protobuf encoding (<c>application/vnd.kubernetes.protobuf</c>) into the same models the JSON
/// reader fills, so everything after decoding is shared.
/// </summary>
/// <remarks>
/// <para>
/// An object or list is the 4-byte magic <c>k8s\0</c> followed by a <c>runtime.Unknown</c> whose <c>raw</c> holds the
/// object's message and whose <c>typeMeta.kind</c> names it. A watch stream (<c>;stream=watch</c>) is a sequence of
/// frames, each a 4-byte big-endian length and a <c>metav1.WatchEvent</c> whose <c>object.raw</c> is such an envelope.
/// </para>
/// <para>
/// The messages are read field by field with <see cref="ProtobufReader"/>, straight into the models: parsing into the
/// generated message types first and copying would build every slice twice. The generated types (from the subset of
/// the API's <c>.proto</c> files under <c>Protos/</c>) serve encoders: tests, the fake API server and benchmarks.
/// Field numbers are the API's, as in <c>k8s.io/api/discovery/v1</c>, <c>k8s.io/api/core/v1</c>,
/// <c>k8s.io/apimachinery/pkg/apis/meta/v1</c> and <c>pkg/runtime</c>.
/// </para>
/// </remarks>
internal static class KubernetesProtobuf
{
    /// <summary>The media type of the protobuf encoding.</summary>
    public const string MediaType = "application/vnd.kubernetes.protobuf";

    /// <summary>The size of a watch frame's length prefix.</summary>
    public const int FrameHeaderBytes = 4;

    /// <summary>Gets the magic that starts every protobuf-encoded object.</summary>
    public static ReadOnlySpan<byte> Magic => "k8s\0"u8;

    /// <summary>Returns whether <paramref name="mediaType"/> (a Content-Type's media type) is the protobuf encoding.</summary>
    public static bool IsProtobuf(string? mediaType) => string.Equals(mediaType, MediaType, StringComparison.OrdinalIgnoreCase);

    /// <summary>Returns whether <paramref name="data"/> starts with the envelope's magic.</summary>
    public static bool HasMagic(ReadOnlySpan<byte> data) => data.StartsWith(Magic);

    /// <summary>Reads a watch frame's length prefix.</summary>
    public static uint ReadFrameLength(ReadOnlySpan<byte> header) => BinaryPrimitives.ReadUInt32BigEndian(header);

    /// <summary>Decodes an <c>EndpointSliceList</c> answer.</summary>
    /// <exception cref="InvalidDataException">The bytes are not a protobuf EndpointSliceList; the message says where.</exception>
    public static EndpointSliceList DecodeList(ReadOnlySpan<byte> data)
    {
        var kind = Unwrap(data, "the list", out var raw);
        if (kind is { Length: > 0 } && kind != "EndpointSliceList")
        {
            throw new InvalidDataException($"the list is a protobuf {Shorten(kind)}, not an EndpointSliceList");
        }

        try
        {
            var list = new EndpointSliceList { Items = [] };
            var reader = new ProtobufReader(raw);
            while (reader.Next(out var field, out var wireType))
            {
                switch (field)
                {
                    case 1:
                        reader.Expect(wireType, ProtobufReader.LengthDelimited);
                        list.Metadata = ReadListMeta(reader.ReadMessage());
                        break;
                    case 2:
                        reader.Expect(wireType, ProtobufReader.LengthDelimited);
                        list.Items.Add(ReadSlice(reader.ReadMessage()));
                        break;
                    default:
                        reader.Skip(wireType);
                        break;
                }
            }

            return list;
        }
        catch (InvalidDataException ex)
        {
            throw new InvalidDataException($"the list is not a valid protobuf EndpointSliceList ({ex.Message})", ex);
        }
    }

    /// <summary>Decodes one watch frame (without its length prefix).</summary>
    /// <exception cref="InvalidDataException">The frame is not a protobuf WatchEvent or its object cannot be read.</exception>
    public static WatchEvent DecodeWatchEvent(ReadOnlySpan<byte> frame)
    {
        var result = new WatchEvent();
        ReadOnlySpan<byte> raw = default;
        try
        {
            var reader = new ProtobufReader(frame);
            while (reader.Next(out var field, out var wireType))
            {
                switch (field)
                {
                    case 1:
                        reader.Expect(wireType, ProtobufReader.LengthDelimited);
                        result.Type = reader.ReadString();
                        break;
                    case 2:
                        reader.Expect(wireType, ProtobufReader.LengthDelimited);
                        var extension = reader.ReadMessage();
                        while (extension.Next(out var inner, out var innerType))
                        {
                            if (inner == 1)
                            {
                                extension.Expect(innerType, ProtobufReader.LengthDelimited);
                                raw = extension.ReadBytes();
                            }
                            else
                            {
                                extension.Skip(innerType);
                            }
                        }

                        break;
                    default:
                        reader.Skip(wireType);
                        break;
                }
            }
        }
        catch (InvalidDataException ex)
        {
            throw new InvalidDataException($"the frame is not a valid protobuf WatchEvent ({ex.Message})", ex);
        }

        if (raw.IsEmpty)
        {
            return result;
        }

        var kind = Unwrap(raw, "the event's object", out var body);
        try
        {
            result.Object = kind == "Status" ? ReadStatus(new ProtobufReader(body)) : ReadSlice(new ProtobufReader(body));
        }
        catch (InvalidDataException ex)
        {
            throw new InvalidDataException($"the event's object is not a valid protobuf {(kind == "Status" ? "Status" : "EndpointSlice")} ({ex.Message})", ex);
        }

        return result;
    }

    /// <summary>Decodes an error answer's <c>Status</c>, or returns <see langword="null"/> when the bytes are not one.</summary>
    public static ApiStatus? DecodeStatus(ReadOnlySpan<byte> data)
    {
        try
        {
            var kind = Unwrap(data, "the error answer", out var raw);
            if (kind != "Status")
            {
                return null;
            }

            var status = ReadStatus(new ProtobufReader(raw));
            return new ApiStatus { Kind = kind, Code = status.Code, Reason = status.Reason, Message = status.Message };
        }
        catch (InvalidDataException)
        {
            return null;
        }
    }

    /// <summary>Checks the magic and the envelope; returns the object's kind and bytes (a slice of <paramref name="data"/>).</summary>
    private static string? Unwrap(ReadOnlySpan<byte> data, string what, out ReadOnlySpan<byte> raw)
    {
        if (!HasMagic(data))
        {
            throw new InvalidDataException($"{what} does not start with the protobuf envelope's magic bytes 'k8s\\0'");
        }

        string? kind = null;
        string? contentEncoding = null;
        string? contentType = null;
        raw = default;
        try
        {
            var reader = new ProtobufReader(data[Magic.Length..]);
            while (reader.Next(out var field, out var wireType))
            {
                switch (field)
                {
                    case 1:
                        reader.Expect(wireType, ProtobufReader.LengthDelimited);
                        var typeMeta = reader.ReadMessage();
                        while (typeMeta.Next(out var inner, out var innerType))
                        {
                            if (inner == 2)
                            {
                                typeMeta.Expect(innerType, ProtobufReader.LengthDelimited);
                                kind = typeMeta.ReadString();
                            }
                            else
                            {
                                typeMeta.Skip(innerType);
                            }
                        }

                        break;
                    case 2:
                        reader.Expect(wireType, ProtobufReader.LengthDelimited);
                        raw = reader.ReadBytes();
                        break;
                    case 3:
                        reader.Expect(wireType, ProtobufReader.LengthDelimited);
                        contentEncoding = reader.ReadString();
                        break;
                    case 4:
                        reader.Expect(wireType, ProtobufReader.LengthDelimited);
                        contentType = reader.ReadString();
                        break;
                    default:
                        reader.Skip(wireType);
                        break;
                }
            }
        }
        catch (InvalidDataException ex)
        {
            throw new InvalidDataException($"{what} is not a valid protobuf envelope (runtime.Unknown: {ex.Message})", ex);
        }

        if (contentEncoding is { Length: > 0 })
        {
            throw new InvalidDataException($"{what} has content encoding '{Shorten(contentEncoding)}', which Lodestar does not read");
        }

        if (contentType is { Length: > 0 } && !IsProtobuf(contentType))
        {
            throw new InvalidDataException($"{what} holds content of type '{Shorten(contentType)}' in a protobuf envelope");
        }

        return kind;
    }

    private static string Shorten(string text) => KubernetesApiClient.Truncate(text, 64);

    private static ListMeta ReadListMeta(ProtobufReader reader)
    {
        var meta = new ListMeta();
        while (reader.Next(out var field, out var wireType))
        {
            switch (field)
            {
                case 2:
                    reader.Expect(wireType, ProtobufReader.LengthDelimited);
                    meta.ResourceVersion = reader.ReadString();
                    break;
                case 3:
                    reader.Expect(wireType, ProtobufReader.LengthDelimited);
                    meta.Continue = reader.ReadString();
                    break;
                default:
                    reader.Skip(wireType);
                    break;
            }
        }

        return meta;
    }

    private static EndpointSlice ReadStatus(ProtobufReader reader)
    {
        var status = new EndpointSlice { Kind = "Status" };
        while (reader.Next(out var field, out var wireType))
        {
            switch (field)
            {
                case 3:
                    reader.Expect(wireType, ProtobufReader.LengthDelimited);
                    status.Message = reader.ReadString();
                    break;
                case 4:
                    reader.Expect(wireType, ProtobufReader.LengthDelimited);
                    status.Reason = reader.ReadString();
                    break;
                case 6:
                    reader.Expect(wireType, ProtobufReader.Varint);
                    status.Code = reader.ReadInt32();
                    break;
                default:
                    reader.Skip(wireType);
                    break;
            }
        }

        return status;
    }

    private static EndpointSlice ReadSlice(ProtobufReader reader)
    {
        var slice = new EndpointSlice { Kind = "EndpointSlice", Endpoints = [], Ports = [] };
        while (reader.Next(out var field, out var wireType))
        {
            if (wireType != ProtobufReader.LengthDelimited)
            {
                reader.Skip(wireType);
                continue;
            }

            switch (field)
            {
                case 1:
                    slice.Metadata = ReadObjectMeta(reader.ReadMessage());
                    break;
                case 2:
                    slice.Endpoints.Add(ReadEndpoint(reader.ReadMessage()));
                    break;
                case 3:
                    slice.Ports.Add(ReadPort(reader.ReadMessage()));
                    break;
                case 4:
                    slice.AddressType = reader.ReadString();
                    break;
                default:
                    reader.Skip(wireType);
                    break;
            }
        }

        return slice;
    }

    private static ObjectMeta ReadObjectMeta(ProtobufReader reader)
    {
        var meta = new ObjectMeta();
        while (reader.Next(out var field, out var wireType))
        {
            if (wireType != ProtobufReader.LengthDelimited)
            {
                reader.Skip(wireType);
                continue;
            }

            switch (field)
            {
                case 1:
                    meta.Name = reader.ReadString();
                    break;
                case 3:
                    meta.Namespace = reader.ReadString();
                    break;
                case 6:
                    meta.ResourceVersion = reader.ReadString();
                    break;
                case 11:
                    // A map entry: key = 1, value = 2.
                    var entry = reader.ReadMessage();
                    string? key = null;
                    var value = "";
                    while (entry.Next(out var inner, out var innerType))
                    {
                        if (inner is 1 or 2 && innerType == ProtobufReader.LengthDelimited)
                        {
                            if (inner == 1)
                            {
                                key = entry.ReadString();
                            }
                            else
                            {
                                value = entry.ReadString();
                            }
                        }
                        else
                        {
                            entry.Skip(innerType);
                        }
                    }

                    (meta.Labels ??= new Dictionary<string, string>(StringComparer.Ordinal))[key ?? ""] = value;
                    break;
                default:
                    reader.Skip(wireType);
                    break;
            }
        }

        return meta;
    }

    private static SliceEndpoint ReadEndpoint(ProtobufReader reader)
    {
        var endpoint = new SliceEndpoint { Addresses = [] };
        while (reader.Next(out var field, out var wireType))
        {
            if (wireType != ProtobufReader.LengthDelimited)
            {
                reader.Skip(wireType);
                continue;
            }

            switch (field)
            {
                case 1:
                    endpoint.Addresses.Add(reader.ReadString());
                    break;
                case 2:
                    endpoint.Conditions = ReadConditions(reader.ReadMessage());
                    break;
                case 3:
                    endpoint.Hostname = reader.ReadString();
                    break;
                case 4:
                    endpoint.TargetRef = ReadReference(reader.ReadMessage());
                    break;
                case 6:
                    endpoint.NodeName = reader.ReadString();
                    break;
                case 7:
                    endpoint.Zone = reader.ReadString();
                    break;
                case 8:
                    endpoint.Hints = ReadHints(reader.ReadMessage());
                    break;
                default:
                    reader.Skip(wireType);
                    break;
            }
        }

        return endpoint;
    }

    private static EndpointConditions ReadConditions(ProtobufReader reader)
    {
        // proto2 optional fields: a condition the server did not set stays null (unknown), apart from false.
        var conditions = new EndpointConditions();
        while (reader.Next(out var field, out var wireType))
        {
            if (field is >= 1 and <= 3 && wireType == ProtobufReader.Varint)
            {
                var value = reader.ReadBool();
                _ = field switch
                {
                    1 => conditions.Ready = value,
                    2 => conditions.Serving = value,
                    _ => conditions.Terminating = value,
                };
            }
            else
            {
                reader.Skip(wireType);
            }
        }

        return conditions;
    }

    private static EndpointHints ReadHints(ProtobufReader reader)
    {
        var hints = new EndpointHints { ForZones = [] };
        while (reader.Next(out var field, out var wireType))
        {
            if (field == 1 && wireType == ProtobufReader.LengthDelimited)
            {
                var zone = new ForZone();
                var item = reader.ReadMessage();
                while (item.Next(out var inner, out var innerType))
                {
                    if (inner == 1 && innerType == ProtobufReader.LengthDelimited)
                    {
                        zone.Name = item.ReadString();
                    }
                    else
                    {
                        item.Skip(innerType);
                    }
                }

                hints.ForZones.Add(zone);
            }
            else
            {
                reader.Skip(wireType);
            }
        }

        return hints;
    }

    private static ObjectReference ReadReference(ProtobufReader reader)
    {
        var reference = new ObjectReference();
        while (reader.Next(out var field, out var wireType))
        {
            if (wireType != ProtobufReader.LengthDelimited)
            {
                reader.Skip(wireType);
                continue;
            }

            switch (field)
            {
                case 1:
                    reference.Kind = reader.ReadString();
                    break;
                case 2:
                    reference.Namespace = reader.ReadString();
                    break;
                case 3:
                    reference.Name = reader.ReadString();
                    break;
                default:
                    reader.Skip(wireType);
                    break;
            }
        }

        return reference;
    }

    private static SlicePort ReadPort(ProtobufReader reader)
    {
        var port = new SlicePort();
        while (reader.Next(out var field, out var wireType))
        {
            switch (field)
            {
                case 1 when wireType == ProtobufReader.LengthDelimited:
                    port.Name = reader.ReadString();
                    break;
                case 2 when wireType == ProtobufReader.LengthDelimited:
                    port.Protocol = reader.ReadString();
                    break;
                case 3 when wireType == ProtobufReader.Varint:
                    port.Port = reader.ReadInt32();
                    break;
                case 4 when wireType == ProtobufReader.LengthDelimited:
                    port.AppProtocol = reader.ReadString();
                    break;
                default:
                    reader.Skip(wireType);
                    break;
            }
        }

        return port;
    }
}
