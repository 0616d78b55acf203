/**
 * The page's bearer token and deep link, from the URL fragment (`#token=…&image=…`) or this tab's
 * sessionStorage. A token taken from the URL is moved to sessionStorage and removed from the address bar,
 * so it does not stay in the history or show on screen; it never goes to the server in a URL.
 */
const KEY = 'pixelport.token'

function fragment (): URLSearchParams {
  return new URLSearchParams(location.hash.replace(/^#/, ''))
}

/** The token to use: a `#token=` in the URL (kept for this tab), else the one kept earlier, else null. */
export function loadToken (): string | null {
  const params = fragment()
  const fromUrl = params.get('token')
  if (fromUrl !== null && fromUrl !== '') {
    saveToken(fromUrl)
    params.delete('token')
    const rest = params.toString()
    history.replaceState(null, '', `${location.pathname}${location.search}${rest === '' ? '' : '#' + rest}`)
    return fromUrl
  }
  try {
    return sessionStorage.getItem(KEY)
  } catch {
    // Storage disabled: the token lasts as long as the page.
    return null
  }
}

export function saveToken (token: string): void {
  try {
    sessionStorage.setItem(KEY, token)
  } catch {}
}

/** The image named in the URL (`#image=cam1/frame`), if any. */
export function linkedImage (): string | null {
  const id = fragment().get('image')
  return id === null || id === '' ? null : id
}

/** Put the shown image in the URL, so a reload or a shared link opens it again. */
export function linkImage (id: string): void {
  const params = fragment()
  params.set('image', id)
  history.replaceState(null, '', `${location.pathname}${location.search}#${params.toString()}`)
}
