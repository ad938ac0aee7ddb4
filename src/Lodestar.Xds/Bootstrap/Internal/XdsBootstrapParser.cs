using System.Net;
using System.Text.Json;
using Google.Protobuf;
using Google.Protobuf.WellKnownTypes;

namespace Lodestar.Xds.Bootstrap.Internal;

/// <summary>
/// Finds and parses the gRPC xDS bootstrap (the format grpc-go and grpc-java read): <c>xds_servers</c> with
/// <c>server_uri</c>, <c>channel_creds</c>, <c>call_creds</c> and <c>server_features</c>, and <c>node</c>. Other
/// top-level fields (<c>certificate_providers</c>, listener name templates, <c>authorities</c>) are accepted and ignored.
/// </summary>
internal static class XdsBootstrapParser
{
    public const string BootstrapFileVariable = "GRPC_XDS_BOOTSTRAP";
    public const string BootstrapConfigVariable = "GRPC_XDS_BOOTSTRAP_CONFIG";

    /// <summary>The largest bootstrap read (Istio's with full node metadata is a few kilobytes).</summary>
    private const long MaxBootstrapBytes = 1024 * 1024;

    /// <summary>Loads the bootstrap the options point to, else the one the environment points to.</summary>
    /// <exception cref="XdsBootstrapException">No bootstrap is configured, or it cannot be read or is invalid.</exception>
    public static XdsBootstrap Load(XdsOptions options, Func<string, string?> environment)
    {
        if (!string.IsNullOrWhiteSpace(options.BootstrapPath))
        {
            return ParseFile(options.BootstrapPath, $"{XdsOptions.SectionName}:{nameof(XdsOptions.BootstrapPath)}");
        }

        if (!string.IsNullOrWhiteSpace(options.BootstrapJson))
        {
            return Parse(options.BootstrapJson, $"{XdsOptions.SectionName}:{nameof(XdsOptions.BootstrapJson)}");
        }

        if (environment(BootstrapFileVariable) is { Length: > 0 } path)
        {
            return ParseFile(path, BootstrapFileVariable);
        }

        if (environment(BootstrapConfigVariable) is { Length: > 0 } json)
        {
            return Parse(json, BootstrapConfigVariable);
        }

        throw new XdsBootstrapException(
            $"No xDS bootstrap is configured: set {XdsOptions.SectionName}:{nameof(XdsOptions.BootstrapPath)}, " +
            $"{XdsOptions.SectionName}:{nameof(XdsOptions.BootstrapJson)}, or the {BootstrapFileVariable} or {BootstrapConfigVariable} environment variable.");
    }

    /// <summary>Reads and parses a bootstrap file.</summary>
    public static XdsBootstrap ParseFile(string path, string setting)
    {
        string text;
        try
        {
            var info = new FileInfo(path);
            if (!info.Exists)
            {
                throw new XdsBootstrapException($"The xDS bootstrap file '{path}' (from {setting}) does not exist.");
            }

            if (info.Length > MaxBootstrapBytes)
            {
                throw new XdsBootstrapException($"The xDS bootstrap file '{path}' (from {setting}) is larger than {MaxBootstrapBytes} bytes.");
            }

            text = File.ReadAllText(path);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            throw new XdsBootstrapException($"The xDS bootstrap file '{path}' (from {setting}) cannot be read: {ex.Message}", ex);
        }

        return Parse(text, $"file '{path}'");
    }

    /// <summary>Parses bootstrap JSON; <paramref name="source"/> names where it came from in every message.</summary>
    public static XdsBootstrap Parse(string json, string source)
    {
        JsonDocument document;
        try
        {
            document = JsonDocument.Parse(json, new JsonDocumentOptions { CommentHandling = JsonCommentHandling.Skip, AllowTrailingCommas = true });
        }
        catch (JsonException ex)
        {
            throw Error(source, $"is not valid JSON (line {ex.LineNumber + 1}, byte {ex.BytePositionInLine}): {FirstSentence(ex.Message)}");
        }

        using (document)
        {
            var root = document.RootElement;
            if (root.ValueKind != JsonValueKind.Object)
            {
                throw Error(source, "must be a JSON object");
            }

            if (!root.TryGetProperty("xds_servers", out var servers) || servers.ValueKind != JsonValueKind.Array || servers.GetArrayLength() == 0)
            {
                throw Error(source, "xds_servers must be a non-empty array");
            }

            var list = new List<XdsServerConfig>();
            var index = 0;
            foreach (var server in servers.EnumerateArray())
            {
                list.Add(ParseServer(server, $"xds_servers[{index}]", source));
                index++;
            }

            var node = root.TryGetProperty("node", out var nodeElement) ? ParseNode(nodeElement, source) : new XdsNodeConfig();
            return new XdsBootstrap { Source = source, Servers = list, Node = node };
        }
    }

    private static XdsServerConfig ParseServer(JsonElement server, string path, string source)
    {
        if (server.ValueKind != JsonValueKind.Object)
        {
            throw Error(source, $"{path} must be an object");
        }

        var uri = String(server, "server_uri", path, source);
        if (string.IsNullOrWhiteSpace(uri))
        {
            throw Error(source, $"{path}.server_uri is missing");
        }

        var (authority, unixPath) = ParseTarget(uri, $"{path}.server_uri", source);

        if (!server.TryGetProperty("channel_creds", out var creds) || creds.ValueKind != JsonValueKind.Array || creds.GetArrayLength() == 0)
        {
            throw Error(source, $"{path}.channel_creds must be a non-empty array");
        }

        // gRPC takes the first entry of a type it knows and skips the others; an entry of a type gRPC knows but
        // Lodestar does not implement is an error rather than a silent downgrade to another kind of credentials.
        string? chosen = null;
        JsonElement config = default;
        var i = 0;
        foreach (var entry in creds.EnumerateArray())
        {
            var type = String(entry, "type", $"{path}.channel_creds[{i}]", source);
            switch (type)
            {
                case "insecure" or "tls":
                    chosen = type;
                    entry.TryGetProperty("config", out config);
                    break;
                case "google_default" or "xds":
                    throw Error(source, $"{path}.channel_creds[{i}].type '{type}' is not supported here; use 'insecure' or 'tls'");
            }

            if (chosen is not null)
            {
                break;
            }

            i++;
        }

        if (chosen is null)
        {
            throw Error(source, $"{path}.channel_creds has no supported type; use 'insecure' or 'tls'");
        }

        string? ca = null, cert = null, key = null;
        if (chosen == "tls" && config.ValueKind == JsonValueKind.Object)
        {
            var configPath = $"{path}.channel_creds[{i}].config";
            ca = OptionalFile(config, "ca_certificate_file", configPath, source);
            cert = OptionalFile(config, "certificate_file", configPath, source);
            key = OptionalFile(config, "private_key_file", configPath, source);
            if ((cert is null) != (key is null))
            {
                throw Error(source, $"{configPath}: certificate_file and private_key_file must be set together");
            }
        }

        var features = new List<string>();
        if (server.TryGetProperty("server_features", out var featureArray))
        {
            if (featureArray.ValueKind != JsonValueKind.Array)
            {
                throw Error(source, $"{path}.server_features must be an array of strings");
            }

            foreach (var feature in featureArray.EnumerateArray())
            {
                if (feature.ValueKind == JsonValueKind.String)
                {
                    features.Add(feature.GetString()!);
                }
            }
        }

        string? tokenFile = null;
        if (server.TryGetProperty("call_creds", out var callCreds) && callCreds.ValueKind == JsonValueKind.Array)
        {
            var c = 0;
            foreach (var entry in callCreds.EnumerateArray())
            {
                var type = String(entry, "type", $"{path}.call_creds[{c}]", source);
                if (type == "jwt_token_file")
                {
                    if (!entry.TryGetProperty("config", out var tokenConfig) || tokenConfig.ValueKind != JsonValueKind.Object)
                    {
                        throw Error(source, $"{path}.call_creds[{c}].config is missing");
                    }

                    tokenFile = String(tokenConfig, "jwt_token_file", $"{path}.call_creds[{c}].config", source);
                    if (string.IsNullOrWhiteSpace(tokenFile))
                    {
                        throw Error(source, $"{path}.call_creds[{c}].config.jwt_token_file is missing");
                    }

                    break;
                }

                c++;
            }
        }

        return new XdsServerConfig
        {
            ServerUri = uri,
            Authority = authority,
            UnixSocketPath = unixPath,
            UseTls = chosen == "tls",
            CaCertificateFile = ca,
            CertificateFile = cert,
            PrivateKeyFile = key,
            TokenFile = tokenFile,
            ServerFeatures = features,
        };
    }

    /// <summary>Reads a gRPC target: <c>host:port</c>, <c>dns:///host:port</c>, <c>unix:///path</c>, <c>unix:path</c>.</summary>
    private static (string? Authority, string? UnixPath) ParseTarget(string uri, string path, string source)
    {
        if (uri.StartsWith("unix:", StringComparison.OrdinalIgnoreCase))
        {
            var rest = uri["unix:".Length..];
            if (rest.StartsWith("//", StringComparison.Ordinal))
            {
                rest = rest[2..];
            }

            if (rest.Length == 0 || rest[0] != '/')
            {
                throw Error(source, $"{path} '{uri}' must name an absolute socket path (unix:///path/to/socket)");
            }

            return (null, rest);
        }

        var target = uri;
        foreach (var scheme in new[] { "dns:///", "passthrough:///", "dns:", "passthrough:" })
        {
            if (target.StartsWith(scheme, StringComparison.OrdinalIgnoreCase))
            {
                target = target[scheme.Length..];
                break;
            }
        }

        if (target.Contains("://", StringComparison.Ordinal) || target.Contains('/', StringComparison.Ordinal) || target.Contains('@', StringComparison.Ordinal))
        {
            throw Error(source, $"{path} '{uri}' is not a gRPC target (host:port, dns:///host:port or unix:///path)");
        }

        var colon = target.LastIndexOf(':');
        var bracket = target.LastIndexOf(']');
        if (colon <= bracket || colon == target.Length - 1 || !int.TryParse(target.AsSpan(colon + 1), out var port) || port is < 1 or > 65535)
        {
            // gRPC's default port for a target without one is 443.
            if (colon > bracket && colon >= 0)
            {
                throw Error(source, $"{path} '{uri}' has an invalid port");
            }

            target += ":443";
        }

        var host = target[..target.LastIndexOf(':')].Trim('[', ']');
        if (host.Length == 0 || (Uri.CheckHostName(host) == UriHostNameType.Unknown && !IPAddress.TryParse(host, out _)))
        {
            throw Error(source, $"{path} '{uri}' has an invalid host");
        }

        return (target, null);
    }

    private static XdsNodeConfig ParseNode(JsonElement node, string source)
    {
        if (node.ValueKind != JsonValueKind.Object)
        {
            throw Error(source, "node must be an object");
        }

        Struct? metadata = null;
        if (node.TryGetProperty("metadata", out var meta) && meta.ValueKind != JsonValueKind.Null)
        {
            if (meta.ValueKind != JsonValueKind.Object)
            {
                throw Error(source, "node.metadata must be an object");
            }

            try
            {
                metadata = Struct.Parser.ParseJson(meta.GetRawText());
            }
            catch (InvalidProtocolBufferException ex)
            {
                throw Error(source, $"node.metadata cannot be read: {ex.Message}");
            }
        }

        string region = string.Empty, zone = string.Empty, subZone = string.Empty;
        if (node.TryGetProperty("locality", out var locality) && locality.ValueKind == JsonValueKind.Object)
        {
            region = String(locality, "region", "node.locality", source) ?? string.Empty;
            zone = String(locality, "zone", "node.locality", source) ?? string.Empty;
            subZone = String(locality, "sub_zone", "node.locality", source) ?? string.Empty;
        }

        return new XdsNodeConfig
        {
            Id = String(node, "id", "node", source) ?? string.Empty,
            Cluster = String(node, "cluster", "node", source) ?? string.Empty,
            Metadata = metadata,
            Region = region,
            Zone = zone,
            SubZone = subZone,
        };
    }

    private static string? String(JsonElement element, string name, string path, string source)
    {
        if (element.ValueKind != JsonValueKind.Object || !element.TryGetProperty(name, out var value) || value.ValueKind == JsonValueKind.Null)
        {
            return null;
        }

        return value.ValueKind == JsonValueKind.String
            ? value.GetString()
            : throw Error(source, $"{path}.{name} must be a string");
    }

    private static string? OptionalFile(JsonElement config, string name, string path, string source)
    {
        var file = String(config, name, path, source);
        if (string.IsNullOrEmpty(file))
        {
            return null;
        }

        return File.Exists(file) ? file : throw Error(source, $"{path}.{name} '{file}' does not exist");
    }

    private static XdsBootstrapException Error(string source, string problem) => new($"xDS bootstrap ({source}): {problem}.");

    private static string FirstSentence(string message)
    {
        var dot = message.IndexOf(". ", StringComparison.Ordinal);
        return dot > 0 ? message[..dot] : message.TrimEnd('.');
    }
}
