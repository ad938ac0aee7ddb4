using System.Buffers.Binary;
using Google.Protobuf;
using Google.Protobuf.Collections;
using Wire = Lodestar.Kubernetes.Protobuf;

namespace Lodestar.Kubernetes.Api.Internal;

/// <summary>
/// Reads the API server's protobuf encoding (<c>application/vnd.kubernetes.protobuf</c>) into the same models the JSON
/// reader fills, so everything after decoding is shared.
/// </summary>
/// <remarks>
/// An object or list is the 4-byte magic <c>k8s\0</c> followed by a <c>runtime.Unknown</c> whose <c>raw</c> holds the
/// object's message and whose <c>typeMeta.kind</c> names it. A watch stream (<c>;stream=watch</c>) is a sequence of
/// frames, each a 4-byte big-endian length and a <c>metav1.WatchEvent</c> whose <c>object.raw</c> is such an envelope.
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
        var envelope = Unwrap(data, "the list");
        var kind = Kind(envelope);
        if (kind is { Length: > 0 } && kind != "EndpointSliceList")
        {
            throw new InvalidDataException($"the list is a protobuf {Shorten(kind)}, not an EndpointSliceList");
        }

        Wire.Discovery.EndpointSliceList list;
        try
        {
            list = Wire.Discovery.EndpointSliceList.Parser.ParseFrom(envelope.Raw.Span);
        }
        catch (InvalidProtocolBufferException ex)
        {
            throw new InvalidDataException($"the list is not a valid protobuf EndpointSliceList ({ex.Message})", ex);
        }

        var items = new List<EndpointSlice>(list.Items.Count);
        foreach (var item in list.Items)
        {
            items.Add(ToModel(item));
        }

        return new EndpointSliceList
        {
            Metadata = list.Metadata is { } meta
                ? new ListMeta { ResourceVersion = meta.HasResourceVersion ? meta.ResourceVersion : null, Continue = meta.HasContinue ? meta.Continue : null }
                : null,
            Items = items,
        };
    }

    /// <summary>Decodes one watch frame (without its length prefix).</summary>
    /// <exception cref="InvalidDataException">The frame is not a protobuf WatchEvent or its object cannot be read.</exception>
    public static WatchEvent DecodeWatchEvent(ReadOnlySpan<byte> frame)
    {
        Wire.Meta.WatchEvent watchEvent;
        try
        {
            watchEvent = Wire.Meta.WatchEvent.Parser.ParseFrom(frame);
        }
        catch (InvalidProtocolBufferException ex)
        {
            throw new InvalidDataException($"the frame is not a valid protobuf WatchEvent ({ex.Message})", ex);
        }

        var result = new WatchEvent { Type = watchEvent.HasType ? watchEvent.Type : null };
        if (watchEvent.Object is not { HasRaw: true } rawObject || rawObject.Raw.IsEmpty)
        {
            return result;
        }

        var envelope = Unwrap(rawObject.Raw.Span, "the event's object");
        var kind = Kind(envelope);
        try
        {
            var raw = envelope.Raw.Span;
            result.Object = kind == "Status" ? ToModel(Wire.Meta.Status.Parser.ParseFrom(raw)) : ToModel(Wire.Discovery.EndpointSlice.Parser.ParseFrom(raw));
        }
        catch (InvalidProtocolBufferException ex)
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
            var envelope = Unwrap(data, "the error answer");
            var kind = Kind(envelope);
            if (kind != "Status")
            {
                return null;
            }

            var status = Wire.Meta.Status.Parser.ParseFrom(envelope.Raw.Span);
            return new ApiStatus
            {
                Kind = kind,
                Code = status.HasCode ? status.Code : null,
                Reason = status.HasReason ? status.Reason : null,
                Message = status.HasMessage ? status.Message : null,
            };
        }
        catch (Exception ex) when (ex is InvalidDataException or InvalidProtocolBufferException)
        {
            return null;
        }
    }

    private static string? Kind(Wire.Runtime.Unknown envelope) => envelope.TypeMeta is { HasKind: true } type ? type.Kind : null;

    /// <summary>Checks the magic and returns the envelope, which carries the object's kind and bytes.</summary>
    private static Wire.Runtime.Unknown Unwrap(ReadOnlySpan<byte> data, string what)
    {
        if (!HasMagic(data))
        {
            throw new InvalidDataException($"{what} does not start with the protobuf envelope's magic bytes 'k8s\\0'");
        }

        Wire.Runtime.Unknown unknown;
        try
        {
            unknown = Wire.Runtime.Unknown.Parser.ParseFrom(data[Magic.Length..]);
        }
        catch (InvalidProtocolBufferException ex)
        {
            throw new InvalidDataException($"{what} is not a valid protobuf envelope (runtime.Unknown: {ex.Message})", ex);
        }

        if (unknown.HasContentEncoding && unknown.ContentEncoding.Length > 0)
        {
            throw new InvalidDataException($"{what} has content encoding '{Shorten(unknown.ContentEncoding)}', which Lodestar does not read");
        }

        if (unknown.HasContentType && unknown.ContentType.Length > 0 && !IsProtobuf(unknown.ContentType))
        {
            throw new InvalidDataException($"{what} holds content of type '{Shorten(unknown.ContentType)}' in a protobuf envelope");
        }

        return unknown;
    }

    private static string Shorten(string text) => KubernetesApiClient.Truncate(text, 64);

    private static EndpointSlice ToModel(Wire.Meta.Status status)
        => new()
        {
            Kind = "Status",
            Code = status.HasCode ? status.Code : null,
            Reason = status.HasReason ? status.Reason : null,
            Message = status.HasMessage ? status.Message : null,
        };

    private static EndpointSlice ToModel(Wire.Discovery.EndpointSlice slice)
    {
        var endpoints = new List<SliceEndpoint>(slice.Endpoints.Count);
        foreach (var endpoint in slice.Endpoints)
        {
            endpoints.Add(ToModel(endpoint));
        }

        var ports = new List<SlicePort>(slice.Ports.Count);
        foreach (var port in slice.Ports)
        {
            ports.Add(new SlicePort
            {
                Name = port.HasName ? port.Name : null,
                Port = port.HasPort ? port.Port : null,
                Protocol = port.HasProtocol ? port.Protocol : null,
                AppProtocol = port.HasAppProtocol ? port.AppProtocol : null,
            });
        }

        return new EndpointSlice
        {
            Kind = "EndpointSlice",
            Metadata = slice.Metadata is { } meta
                ? new ObjectMeta
                {
                    Name = meta.HasName ? meta.Name : null,
                    Namespace = meta.HasNamespace ? meta.Namespace : null,
                    ResourceVersion = meta.HasResourceVersion ? meta.ResourceVersion : null,
                    Labels = ToDictionary(meta.Labels),
                }
                : null,
            AddressType = slice.HasAddressType ? slice.AddressType : null,
            Endpoints = endpoints,
            Ports = ports,
        };
    }

    private static SliceEndpoint ToModel(Wire.Discovery.Endpoint endpoint)
    {
        var result = new SliceEndpoint
        {
            Addresses = [.. endpoint.Addresses],
            Hostname = endpoint.HasHostname ? endpoint.Hostname : null,
            NodeName = endpoint.HasNodeName ? endpoint.NodeName : null,
            Zone = endpoint.HasZone ? endpoint.Zone : null,
        };
        if (endpoint.Conditions is { } conditions)
        {
            result.Conditions = new EndpointConditions
            {
                Ready = conditions.HasReady ? conditions.Ready : null,
                Serving = conditions.HasServing ? conditions.Serving : null,
                Terminating = conditions.HasTerminating ? conditions.Terminating : null,
            };
        }

        if (endpoint.Hints is { } hints)
        {
            var zones = new List<ForZone>(hints.ForZones.Count);
            foreach (var zone in hints.ForZones)
            {
                zones.Add(new ForZone { Name = zone.HasName ? zone.Name : null });
            }

            result.Hints = new EndpointHints { ForZones = zones };
        }

        if (endpoint.TargetRef is { } target)
        {
            result.TargetRef = new ObjectReference
            {
                Kind = target.HasKind ? target.Kind : null,
                Name = target.HasName ? target.Name : null,
                Namespace = target.HasNamespace ? target.Namespace : null,
            };
        }

        return result;
    }

    private static Dictionary<string, string>? ToDictionary(MapField<string, string> map)
    {
        if (map.Count == 0)
        {
            return null;
        }

        var result = new Dictionary<string, string>(map.Count, StringComparer.Ordinal);
        foreach (var (key, value) in map)
        {
            result[key] = value;
        }

        return result;
    }
}
