using System.Text.Json;
using Lodestar.Diagnostics;
using Lodestar.Xds.Client.Internal;
using Lodestar.Xds.Resources;

namespace Lodestar.Xds.Diagnostics.Internal;

/// <summary>
/// The admin view's <c>xds</c> section: the management server in use and, per resource type, the subscribed names,
/// the accepted version, the last nonce and the last rejection (NACK). Reads the client's state without subscribing to
/// anything and without starting the client. Every text a server could have chosen is redacted with the client's
/// redactor, which knows the call-credential tokens; the bootstrap's credentials are never written.
/// </summary>
internal sealed class XdsStatusSection(XdsClientProvider provider) : ILodestarStatusSection
{
    /// <summary>The most subscribed names listed per type; the count says how many there are.</summary>
    internal const int MaxNamesPerType = 200;

    public string Name => "xds";

    public void WriteTo(Utf8JsonWriter writer)
    {
        var redactor = provider.Redactor;
        writer.WriteStartObject();
        var client = provider.CreatedClient;
        if (client is null)
        {
            writer.WriteString("state", "not started (no xDS resource used yet)");
            writer.WriteEndObject();
            return;
        }

        writer.WriteString("server", redactor.Redact(client.ServerName));
        writer.WriteString("state", client.ActiveServerIndex == 0 ? "primary server" : "fallback server " + client.ActiveServerIndex.ToString(System.Globalization.CultureInfo.InvariantCulture));
        writer.WriteStartArray("types");
        foreach (var type in client.Dump())
        {
            writer.WriteStartObject();
            writer.WriteString("type", XdsTypeUrls.ShortName(type.TypeUrl));
            writer.WriteString("acceptedVersion", redactor.Redact(type.AcceptedVersion));
            writer.WriteString("lastNonce", redactor.Redact(type.Nonce));
            var subscribed = type.Resources.Where(static r => r.Watchers > 0).Select(static r => r.Name).ToList();
            if (type.Wildcard)
            {
                subscribed.Insert(0, XdsClient.Wildcard);
            }

            writer.WriteNumber("subscribedCount", subscribed.Count);
            writer.WriteStartArray("subscribed");
            foreach (var name in subscribed.Take(MaxNamesPerType))
            {
                writer.WriteStringValue(redactor.Redact(name));
            }

            writer.WriteEndArray();
            writer.WriteNumber("accepted", type.Resources.Count(static r => r.Status == "accepted"));
            if (type.LastNack is { } nack)
            {
                writer.WriteStartObject("lastNack");
                writer.WriteString("version", redactor.Redact(nack.Version));
                writer.WriteString("nonce", redactor.Redact(nack.Nonce));
                writer.WriteString("errorDetail", redactor.Redact(nack.Message));
                writer.WriteString("at", nack.At);
                writer.WriteEndObject();
            }
            else
            {
                writer.WriteNull("lastNack");
            }

            writer.WriteEndObject();
        }

        writer.WriteEndArray();
        writer.WriteEndObject();
    }
}
