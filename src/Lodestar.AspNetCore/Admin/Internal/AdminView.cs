using Lodestar.Diagnostics;
using Lodestar.Discovery;

namespace Lodestar.AspNetCore.Admin.Internal;

/// <summary>
/// Turns an inspection into what the admin API may show: metadata filtered by key, every string redacted and URIs
/// stripped of user-info, whatever a registry or server put in them.
/// </summary>
internal sealed class AdminView(LodestarAdminOptions options)
{
    private readonly string[] _shown = [.. options.MetadataKeys];
    private readonly string[] _hidden = [.. options.HiddenMetadataKeys];
    private readonly SecretRedactor _redactor = options.Redactor;

    public LodestarInspection Apply(LodestarInspection inspection) => inspection with
    {
        Services = inspection.Services.Select(Apply).ToArray(),
        Events = inspection.Events.Select(e => e with
        {
            Service = Clean(e.Service),
            Source = Clean(e.Source),
            Endpoint = Clean(e.Endpoint),
            Detail = Clean(e.Detail),
        }).ToArray(),
    };

    private ServiceInspection Apply(ServiceInspection service) => service with
    {
        Service = Clean(service.Service),
        Policy = Clean(service.Policy),
        Source = service.Source with { Name = Clean(service.Source.Name), LastError = Clean(service.Source.LastError) },
        Endpoints = service.Endpoints.Select(Apply).ToArray(),
    };

    private EndpointInspection Apply(EndpointInspection endpoint) => endpoint with
    {
        Address = Clean(endpoint.Address),
        Zone = Clean(endpoint.Zone),
        Metadata = FilterMetadata(endpoint.Metadata),
    };

    private Dictionary<string, string> FilterMetadata(IReadOnlyDictionary<string, string> metadata)
    {
        var result = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var (key, value) in metadata)
        {
            if (IsShown(key))
            {
                result[Clean(key)] = Clean(value);
            }
        }

        return result;
    }

    private bool IsShown(string key)
    {
        if (_shown.Length > 0 && !_shown.Contains(key, StringComparer.OrdinalIgnoreCase))
        {
            return false;
        }

        foreach (var fragment in _hidden)
        {
            if (key.Contains(fragment, StringComparison.OrdinalIgnoreCase))
            {
                return false;
            }
        }

        return true;
    }

    /// <summary>Redacts secrets and strips URI user-info from a text a registry, server or section wrote.</summary>
    [return: System.Diagnostics.CodeAnalysis.NotNullIfNotNull(nameof(text))]
    public string? Clean(string? text) => text is null ? null : UserInfo.Strip(_redactor.Redact(text)!);
}
