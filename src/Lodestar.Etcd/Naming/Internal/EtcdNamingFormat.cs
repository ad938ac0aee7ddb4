using System.Globalization;
using System.Text.Json;
using Lodestar.Endpoints;
using Lodestar.Registration;

namespace Lodestar.Etcd.Naming.Internal;

/// <summary>
/// The key layout and value format of etcd's Go package <c>go.etcd.io/etcd/client/v3/naming/endpoints</c>, so Go and
/// .NET services discover each other.
/// </summary>
/// <remarks>
/// The Go endpoint manager of target <c>T</c> writes each instance as the key <c>T/&lt;instance&gt;</c> with the value
/// <c>{"Op":0,"Addr":"10.0.0.5:8080","Metadata":...}</c> (internal.Update: Op 0 = Add, 1 = Delete; Metadata any JSON).
/// Its watcher treats a put whose value says Op 1 as a removal and skips values it cannot decode; so does this reader.
/// Metadata that is a JSON object contributes its string members (numbers and booleans as their JSON text) to
/// <see cref="DiscoveredEndpoint.Metadata"/>; <c>weight</c>, <c>zone</c> and <c>scheme</c> members also set those
/// attributes.
/// </remarks>
internal static class EtcdNamingFormat
{
    public const int OpAdd = 0;
    public const int OpDelete = 1;

    /// <summary>Returns the key prefix of a service's instances: <c>{prefix}{service}/</c>.</summary>
    public static string ServicePrefix(string prefix, string serviceName) => string.Concat(prefix, serviceName, "/");

    /// <summary>Returns the key of one instance: <c>{prefix}{service}/{instanceId}</c>.</summary>
    public static string InstanceKey(string prefix, string serviceName, string instanceId) => string.Concat(prefix, serviceName, "/", instanceId);

    /// <summary>Encodes a registration as the Go package does: <c>{"Op":0,"Addr":"host:port","Metadata":{...}}</c>.</summary>
    public static string Format(ServiceRegistration registration)
    {
        using var buffer = new MemoryStream();
        using (var writer = new Utf8JsonWriter(buffer))
        {
            writer.WriteStartObject();
            writer.WriteNumber("Op", OpAdd);
            writer.WriteString("Addr", DiscoveredEndpoint.FormatAddress(registration.Host.Trim('[', ']'), registration.Port));
            var metadata = new SortedDictionary<string, string>(StringComparer.Ordinal);
            foreach (var pair in registration.Metadata)
            {
                metadata[pair.Key] = pair.Value;
            }

            if (!string.Equals(registration.Scheme, "http", StringComparison.OrdinalIgnoreCase))
            {
                metadata["scheme"] = registration.Scheme.ToLowerInvariant();
            }

            if (metadata.Count == 0)
            {
                writer.WriteNull("Metadata");
            }
            else
            {
                writer.WriteStartObject("Metadata");
                foreach (var pair in metadata)
                {
                    writer.WriteString(pair.Key, pair.Value);
                }

                writer.WriteEndObject();
            }

            writer.WriteEndObject();
        }

        return System.Text.Encoding.UTF8.GetString(buffer.GetBuffer(), 0, (int)buffer.Length);
    }

    /// <summary>Decodes one key's value.</summary>
    /// <param name="value">The raw value.</param>
    /// <param name="endpoint">The endpoint, when the value announces one.</param>
    /// <param name="error">Why the value is malformed, when it is.</param>
    /// <returns>
    /// <see langword="true"/> when the value is well formed; then <paramref name="endpoint"/> is <see langword="null"/>
    /// for an Op 1 (Delete) value.
    /// </returns>
    public static bool TryParse(ReadOnlySpan<byte> value, out DiscoveredEndpoint? endpoint, out string? error)
    {
        endpoint = null;
        error = null;
        JsonDocument document;
        try
        {
            document = JsonDocument.Parse(value.ToArray());
        }
        catch (JsonException ex)
        {
            error = "the value is not JSON (" + ex.Message + ")";
            return false;
        }

        using (document)
        {
            try
            {
                return TryRead(document.RootElement, out endpoint, out error);
            }
            catch (InvalidOperationException)
            {
                // JsonElement.GetString throws on a string that is not UTF-8.
                endpoint = null;
                error = "the value holds a string that is not valid UTF-8";
                return false;
            }
        }
    }

    private static bool TryRead(JsonElement root, out DiscoveredEndpoint? endpoint, out string? error)
    {
        endpoint = null;
        error = null;
        if (root.ValueKind != JsonValueKind.Object)
        {
            error = "the value is not a JSON object";
            return false;
        }

        var op = OpAdd;
        if (root.TryGetProperty("Op", out var opElement) && !(opElement.ValueKind == JsonValueKind.Number && opElement.TryGetInt32(out op)))
        {
            error = "Op is not a number";
            return false;
        }

        if (op == OpDelete)
        {
            return true;
        }

        if (op != OpAdd)
        {
            error = $"Op is {op.ToString(CultureInfo.InvariantCulture)}, expected 0 (Add) or 1 (Delete)";
            return false;
        }

        if (!root.TryGetProperty("Addr", out var addrElement) || addrElement.ValueKind != JsonValueKind.String || string.IsNullOrWhiteSpace(addrElement.GetString()))
        {
            error = "Addr is missing or not a string";
            return false;
        }

        if (!DiscoveredEndpoint.TryParse(addrElement.GetString(), 0, out var parsed, out var addressError))
        {
            error = "Addr " + addressError;
            return false;
        }

        var weight = 1;
        string? zone = null;
        var scheme = parsed.Scheme;
        Dictionary<string, string>? metadata = null;
        if (root.TryGetProperty("Metadata", out var meta) && meta.ValueKind == JsonValueKind.Object)
        {
            foreach (var member in meta.EnumerateObject())
            {
                var text = member.Value.ValueKind switch
                {
                    JsonValueKind.String => member.Value.GetString(),
                    JsonValueKind.Number or JsonValueKind.True or JsonValueKind.False => member.Value.GetRawText(),
                    _ => null,
                };
                if (text is null)
                {
                    continue;
                }

                (metadata ??= new(StringComparer.Ordinal))[member.Name] = text;
                if (string.Equals(member.Name, "weight", StringComparison.OrdinalIgnoreCase))
                {
                    if (!int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out weight))
                    {
                        error = $"Metadata.weight is '{text}', not a whole number";
                        return false;
                    }
                }
                else if (string.Equals(member.Name, "zone", StringComparison.OrdinalIgnoreCase))
                {
                    zone = text;
                }
                else if (string.Equals(member.Name, "scheme", StringComparison.OrdinalIgnoreCase) && scheme is null)
                {
                    scheme = text;
                }
            }
        }

        if (!DiscoveredEndpoint.TryCreate(parsed.Host, parsed.Port, scheme, weight, zone, metadata, 0, out endpoint, out var createError))
        {
            error = createError;
            return false;
        }

        return true;
    }
}
