using System.Buffers.Binary;
using System.Text.Json;
using System.Text.Json.Nodes;
using Google.Protobuf;
using Wire = Lodestar.Kubernetes.Protobuf;

namespace Lodestar.Testing.Kubernetes;

/// <summary>
/// Renders what the fake API server holds as JSON in the API server's protobuf encoding: objects and lists in the
/// <c>k8s\0</c> envelope, watch events as length-prefixed <c>metav1.WatchEvent</c> frames.
/// </summary>
public static class FakeProtobuf
{
    public const string MediaType = "application/vnd.kubernetes.protobuf";

    public const string WatchMediaType = "application/vnd.kubernetes.protobuf;stream=watch";

    // A frame that no protobuf parser accepts: field 1, length-delimited, with a length that runs past the end.
    private static readonly byte[] s_unreadable = [0x0A, 0xFF, 0xFF, 0x03];

    /// <summary>Wraps a message in the envelope: the magic, then a runtime.Unknown naming its kind.</summary>
    public static byte[] Envelope(string apiVersion, string kind, IMessage message)
    {
        var unknown = new Wire.Runtime.Unknown
        {
            TypeMeta = new Wire.Runtime.TypeMeta { ApiVersion = apiVersion, Kind = kind },
            Raw = message.ToByteString(),
            ContentType = "",
        };
        var body = unknown.ToByteArray();
        var result = new byte[4 + body.Length];
        "k8s\0"u8.CopyTo(result);
        body.CopyTo(result, 4);
        return result;
    }

    /// <summary>Renders a JSON EndpointSliceList as a protobuf answer.</summary>
    public static byte[] List(JsonObject list)
    {
        var result = new Wire.Discovery.EndpointSliceList { Metadata = new Wire.Meta.ListMeta() };
        if (list["metadata"] is JsonObject meta)
        {
            if (Text(meta, "resourceVersion") is { } version)
            {
                result.Metadata.ResourceVersion = version;
            }

            if (Text(meta, "continue") is { } token)
            {
                result.Metadata.Continue = token;
            }
        }

        foreach (var item in list["items"] as JsonArray ?? [])
        {
            result.Items.Add(Slice(item as JsonObject ?? []));
        }

        return Envelope("discovery.k8s.io/v1", "EndpointSliceList", result);
    }

    /// <summary>Renders a Status answer.</summary>
    public static byte[] Status(int code, string reason, string message)
        => Envelope("v1", "Status", new Wire.Meta.Status { Status_ = "Failure", Code = code, Reason = reason, Message = message });

    /// <summary>
    /// Renders a JSON watch line as a length-prefixed frame. A line that is not JSON becomes a frame no parser
    /// accepts, so a malformed line stays malformed in either encoding.
    /// </summary>
    public static byte[] Frame(string line)
    {
        JsonObject? json;
        try
        {
            json = JsonNode.Parse(line) as JsonObject;
        }
        catch (JsonException)
        {
            json = null;
        }

        return json is null ? WithLength(s_unreadable) : WithLength(WatchEvent(json).ToByteArray());
    }

    /// <summary>Prefixes <paramref name="body"/> with its 4-byte big-endian length.</summary>
    public static byte[] WithLength(ReadOnlySpan<byte> body)
    {
        var frame = new byte[4 + body.Length];
        BinaryPrimitives.WriteUInt32BigEndian(frame, (uint)body.Length);
        body.CopyTo(frame.AsSpan(4));
        return frame;
    }

    /// <summary>A frame header announcing <paramref name="length"/> bytes.</summary>
    public static byte[] Header(uint length)
    {
        var header = new byte[4];
        BinaryPrimitives.WriteUInt32BigEndian(header, length);
        return header;
    }

    private static Wire.Meta.WatchEvent WatchEvent(JsonObject json)
    {
        var result = new Wire.Meta.WatchEvent();
        if (Text(json, "type") is { } type)
        {
            result.Type = type;
        }

        if (json["object"] is JsonObject item)
        {
            var raw = Text(item, "kind") == "Status"
                ? Envelope("v1", "Status", StatusOf(item))
                : Envelope("discovery.k8s.io/v1", "EndpointSlice", Slice(item));
            result.Object = new Wire.Runtime.RawExtension { Raw = ByteString.CopyFrom(raw) };
        }

        return result;
    }

    private static Wire.Meta.Status StatusOf(JsonObject item)
    {
        var status = new Wire.Meta.Status { Status_ = Text(item, "status") ?? "Failure" };
        if (item["code"] is JsonValue code && code.TryGetValue<int>(out var number))
        {
            status.Code = number;
        }

        if (Text(item, "reason") is { } reason)
        {
            status.Reason = reason;
        }

        if (Text(item, "message") is { } message)
        {
            status.Message = message;
        }

        return status;
    }

    private static Wire.Discovery.EndpointSlice Slice(JsonObject item)
    {
        var slice = new Wire.Discovery.EndpointSlice();
        if (item["metadata"] is JsonObject meta)
        {
            slice.Metadata = new Wire.Meta.ObjectMeta();
            if (Text(meta, "name") is { } name)
            {
                slice.Metadata.Name = name;
            }

            if (Text(meta, "namespace") is { } ns)
            {
                slice.Metadata.Namespace = ns;
            }

            if (Text(meta, "resourceVersion") is { } version)
            {
                slice.Metadata.ResourceVersion = version;
            }

            if (meta["generation"] is JsonValue generation && generation.TryGetValue<long>(out var g))
            {
                slice.Metadata.Generation = g;
            }

            if (meta["labels"] is JsonObject labels)
            {
                foreach (var (key, value) in labels)
                {
                    slice.Metadata.Labels[key] = value?.GetValue<string>() ?? "";
                }
            }
        }

        if (Text(item, "addressType") is { } addressType)
        {
            slice.AddressType = addressType;
        }

        foreach (var node in item["endpoints"] as JsonArray ?? [])
        {
            if (node is JsonObject endpoint)
            {
                slice.Endpoints.Add(Endpoint(endpoint));
            }
        }

        foreach (var node in item["ports"] as JsonArray ?? [])
        {
            if (node is not JsonObject port)
            {
                continue;
            }

            var result = new Wire.Discovery.EndpointPort();
            if (Text(port, "name") is { } name)
            {
                result.Name = name;
            }

            if (Text(port, "protocol") is { } protocol)
            {
                result.Protocol = protocol;
            }

            if (port["port"] is JsonValue number && number.TryGetValue<int>(out var value))
            {
                result.Port = value;
            }

            if (Text(port, "appProtocol") is { } appProtocol)
            {
                result.AppProtocol = appProtocol;
            }

            slice.Ports.Add(result);
        }

        return slice;
    }

    private static Wire.Discovery.Endpoint Endpoint(JsonObject endpoint)
    {
        var result = new Wire.Discovery.Endpoint();
        foreach (var address in endpoint["addresses"] as JsonArray ?? [])
        {
            if (address is JsonValue value && value.TryGetValue<string>(out var text))
            {
                result.Addresses.Add(text);
            }
        }

        if (endpoint["conditions"] is JsonObject conditions)
        {
            result.Conditions = new Wire.Discovery.EndpointConditions();
            if (Flag(conditions, "ready") is { } ready)
            {
                result.Conditions.Ready = ready;
            }

            if (Flag(conditions, "serving") is { } serving)
            {
                result.Conditions.Serving = serving;
            }

            if (Flag(conditions, "terminating") is { } terminating)
            {
                result.Conditions.Terminating = terminating;
            }
        }

        if (Text(endpoint, "hostname") is { } hostname)
        {
            result.Hostname = hostname;
        }

        if (Text(endpoint, "nodeName") is { } node)
        {
            result.NodeName = node;
        }

        if (Text(endpoint, "zone") is { } zone)
        {
            result.Zone = zone;
        }

        if (endpoint["hints"] is JsonObject hints)
        {
            result.Hints = new Wire.Discovery.EndpointHints();
            foreach (var forZone in hints["forZones"] as JsonArray ?? [])
            {
                var hint = new Wire.Discovery.ForZone();
                if (forZone is JsonObject z && Text(z, "name") is { } name)
                {
                    hint.Name = name;
                }

                result.Hints.ForZones.Add(hint);
            }
        }

        if (endpoint["targetRef"] is JsonObject target)
        {
            result.TargetRef = new Wire.Core.ObjectReference();
            if (Text(target, "kind") is { } kind)
            {
                result.TargetRef.Kind = kind;
            }

            if (Text(target, "name") is { } name)
            {
                result.TargetRef.Name = name;
            }

            if (Text(target, "namespace") is { } ns)
            {
                result.TargetRef.Namespace = ns;
            }

            if (Text(target, "uid") is { } uid)
            {
                result.TargetRef.Uid = uid;
            }
        }

        return result;
    }

    private static string? Text(JsonObject json, string name)
        => json[name] is JsonValue value && value.TryGetValue<string>(out var text) ? text : null;

    private static bool? Flag(JsonObject json, string name)
        => json[name] is JsonValue value && value.TryGetValue<bool>(out var flag) ? flag : null;
}
